//! Whole HDUs and files.
