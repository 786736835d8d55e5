//! Tile geometry: how an N-dimensional image is cut into tiles.
//!
//! Tiles follow FITS order: the first axis varies fastest, and tiles are
//! numbered the same way (tile 0 is at the origin, the next one along axis 1).
//! Edge tiles are clipped to the image. Geometry is fully general in the
//! number of axes, so cube-aware tiling (tiles spanning planes) needs no
//! change here.

use crate::error::{Context, Error, Result};
use crate::limits::Limits;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileGrid {
    image: Vec<usize>,
    tile: Vec<usize>,
    /// Number of tiles along each axis.
    counts: Vec<usize>,
}

impl TileGrid {
    /// A grid for `image` axes cut into tiles of `tile` axes (missing
    /// trailing tile axes are 1; tile axes larger than the image are clipped).
    pub fn new(image: &[usize], tile: &[usize], limits: &Limits, ctx: &Context) -> Result<Self> {
        if image.is_empty() || image.contains(&0) {
            return Err(Error::malformed(ctx.clone(), "image has no pixels"));
        }
        if tile.len() > image.len() {
            return Err(Error::malformed(
                ctx.clone(),
                format!("{} tile axes for a {}-axis image", tile.len(), image.len()),
            ));
        }
        let mut clipped = Vec::with_capacity(image.len());
        for (i, &n) in image.iter().enumerate() {
            let t = tile.get(i).copied().unwrap_or(1);
            if t == 0 {
                return Err(Error::malformed(
                    ctx.clone(),
                    format!("ZTILE{} is 0", i + 1),
                ));
            }
            clipped.push(t.min(n));
        }
        let tile_pixels = clipped
            .iter()
            .try_fold(1u64, |a, &t| a.checked_mul(t as u64));
        match tile_pixels {
            Some(p) if p <= limits.max_tile_pixels => {}
            other => {
                return Err(Error::LimitExceeded {
                    context: ctx.clone(),
                    what: "pixels per tile".into(),
                    value: other.map(u128::from).unwrap_or(u128::MAX),
                    limit: limits.max_tile_pixels.into(),
                })
            }
        }
        let counts: Vec<usize> = image
            .iter()
            .zip(&clipped)
            .map(|(&n, &t)| n.div_ceil(t))
            .collect();
        let n_tiles = counts
            .iter()
            .try_fold(1u64, |a, &c| a.checked_mul(c as u64));
        match n_tiles {
            Some(n) if n <= limits.max_tiles => {}
            other => {
                return Err(Error::LimitExceeded {
                    context: ctx.clone(),
                    what: "number of tiles".into(),
                    value: other.map(u128::from).unwrap_or(u128::MAX),
                    limit: limits.max_tiles.into(),
                })
            }
        }
        Ok(TileGrid {
            image: image.to_vec(),
            tile: clipped,
            counts,
        })
    }

    pub fn image_axes(&self) -> &[usize] {
        &self.image
    }

    /// The nominal tile axes (ZTILEn), after clipping to the image.
    pub fn tile_axes(&self) -> &[usize] {
        &self.tile
    }

    pub fn n_tiles(&self) -> usize {
        self.counts.iter().product()
    }

    pub fn n_pixels(&self) -> usize {
        self.image.iter().product()
    }

    /// Origin (pixel index per axis) and clipped shape of tile `index`.
    pub fn tile_bounds(&self, index: usize) -> (Vec<usize>, Vec<usize>) {
        let mut rest = index;
        let mut origin = Vec::with_capacity(self.image.len());
        let mut shape = Vec::with_capacity(self.image.len());
        for axis in 0..self.image.len() {
            let k = rest % self.counts[axis];
            rest /= self.counts[axis];
            let start = k * self.tile[axis];
            origin.push(start);
            shape.push(self.tile[axis].min(self.image[axis] - start));
        }
        (origin, shape)
    }

    /// Calls `f(image_offset, tile_offset, run_len)` (in pixels) for each
    /// contiguous run of tile `index`: one run per line along axis 1.
    pub fn for_each_run(&self, index: usize, mut f: impl FnMut(usize, usize, usize)) {
        let (origin, shape) = self.tile_bounds(index);
        let run = shape[0];
        let lines: usize = shape[1..].iter().product();
        let mut pos = vec![0usize; shape.len()];
        for line in 0..lines {
            // Image offset of the start of this line.
            let mut offset = 0usize;
            let mut stride = 1usize;
            for axis in 0..shape.len() {
                offset += (origin[axis] + pos[axis]) * stride;
                stride *= self.image[axis];
            }
            f(offset, line * run, run);
            // Advance the multi-index over axes 2..n.
            for axis in 1..shape.len() {
                pos[axis] += 1;
                if pos[axis] < shape[axis] {
                    break;
                }
                pos[axis] = 0;
            }
        }
    }

    /// The pixel range of tile `index` when it is one contiguous run of the
    /// image (whole rows, or one row): then it can be read in place.
    pub fn contiguous_range(&self, index: usize) -> Option<std::ops::Range<usize>> {
        let (origin, shape) = self.tile_bounds(index);
        // Contiguous when every axis before the last one longer than 1 is
        // taken whole.
        let last_long = shape.iter().rposition(|&d| d > 1).unwrap_or(0);
        if (0..last_long).any(|a| shape[a] != self.image[a]) {
            return None;
        }
        let mut start = 0usize;
        let mut stride = 1usize;
        for axis in 0..self.image.len() {
            start += origin[axis] * stride;
            stride *= self.image[axis];
        }
        Some(start..start + shape.iter().product::<usize>())
    }

    /// Copy tile `index` out of a whole image of `elem`-byte pixels.
    pub fn gather(&self, image: &[u8], elem: usize, index: usize) -> Vec<u8> {
        let (_, shape) = self.tile_bounds(index);
        let mut out = vec![0u8; shape.iter().product::<usize>() * elem];
        self.for_each_run(index, |img, tile, len| {
            out[tile * elem..(tile + len) * elem]
                .copy_from_slice(&image[img * elem..(img + len) * elem]);
        });
        out
    }

    /// Copy tile `index` back into a whole image of `elem`-byte pixels.
    pub fn scatter(&self, image: &mut [u8], elem: usize, index: usize, tile: &[u8]) {
        self.for_each_run(index, |img, t, len| {
            image[img * elem..(img + len) * elem]
                .copy_from_slice(&tile[t * elem..(t + len) * elem]);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_scatter_round_trip_3d() {
        let image = [5usize, 4, 3];
        let grid =
            TileGrid::new(&image, &[2, 3, 2], &Limits::default(), &Context::default()).unwrap();
        assert_eq!(grid.n_tiles(), 3 * 2 * 2);
        let n: usize = image.iter().product();
        let data: Vec<u8> = (0..n as u32)
            .flat_map(|v| (v as u16).to_be_bytes())
            .collect();
        let mut back = vec![0u8; data.len()];
        let mut seen = 0;
        for t in 0..grid.n_tiles() {
            let tile = grid.gather(&data, 2, t);
            seen += tile.len() / 2;
            grid.scatter(&mut back, 2, t, &tile);
        }
        assert_eq!(seen, n);
        assert_eq!(back, data);
        // Tiles of whole rows are contiguous; these 2x3x2 tiles of a 5-wide
        // image are not, except the clipped last column.
        let rows =
            TileGrid::new(&image, &[5, 2, 1], &Limits::default(), &Context::default()).unwrap();
        assert_eq!(rows.contiguous_range(1), Some(10..20));
        assert_eq!(grid.contiguous_range(0), None);
        // The last tile is clipped on every axis.
        assert_eq!(grid.tile_bounds(11), (vec![4, 3, 2], vec![1, 1, 1]));
    }

    #[test]
    fn rejects_absurd_tiles() {
        let l = Limits::default();
        let c = Context::default();
        assert!(TileGrid::new(&[10, 10], &[0, 1], &l, &c).is_err());
        assert!(TileGrid::new(&[10], &[1, 1], &l, &c).is_err());
        assert!(TileGrid::new(&[1 << 40, 1 << 30], &[1, 1], &l, &c).is_err());
    }
}
