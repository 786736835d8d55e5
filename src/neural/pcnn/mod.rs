//! PixelCNN-family autoregressive model for PCNN_1, on the integer semantics
//! of [`crate::neural::semantics`].
//!
//! Why this shape: an autoregressive model codes each pixel given all the
//! pixels before it, the strongest neural likelihood in the AstroCompress
//! paper, but its decoder must run the network once per pixel. So the
//! network is small and causal, its activations are cached row by row
//! ([`net`]), and the heavy lifting of prediction is done by mixing fixed
//! integer predictors with learned weights ([`features`], [`mixture`]): cheap
//! per pixel, exact on any machine, and scale-free, so one model serves
//! noise-dominated raw frames and smooth images alike.
//!
//! - [`features`]: the causal context of a pixel (integer).
//! - [`model`]: `.pcnm` model files, validated, identified by SHA-256.
//! - [`net`]: the network, one pixel at a time, with cached activations.
//! - [`mixture`]: network outputs → discretised logistic mixture → integer
//!   CDFs for the range coder (MSB, LSB given MSB, or 16-bit).
//! - [`adapt`]: online, context-wise bias and scale correction within a tile.
//! - [`coder`]: tile streams.
//! - [`store`]: the built-in model and models loaded from files.

pub mod adapt;
pub mod coder;
pub mod features;
pub mod mixture;
pub mod model;
pub mod net;
pub mod store;

pub use coder::{decode_tile, encode_tile, Mode};
pub use model::PcnnModel;
