//! Cuts a raster into tiles, and its overviews with it, in one pass over its rows: the rows arrive in strips
//! from the top (as the warp makes them), each level keeps only the one row of tiles it is filling, and a
//! full row of tiles is written out at once. The overviews are made from the warped rows by nearest
//! neighbour (each overview pixel takes the base pixel at its centre, as GDAL's nearest overviews do), so the
//! table is never read back to make them. Memory: one row of tiles per level, whatever the raster's height.

use std::io::Write;

use serde::{Deserialize, Serialize};

use super::wkb::{Band, Placement, write_tile_hex};

/// Tiles are this many pixels on a side (the reference's `-t 128x128`); the last column and row of tiles
/// are narrower where the raster ends, as raster2pgsql makes them without `-P`.
pub const TILE: usize = 128;

/// Overview factors stop here, as the reference's do.
const MAX_FACTOR: usize = 1000;
/// The reference stops halving once the larger side is below this many pixels, and makes one more level.
const SMALLEST_SIDE: usize = 256;

/// The raster as loaded: its size and georeference in `srid`, and its bands.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub width: usize,
    pub height: usize,
    pub upper_left: (f64, f64),
    pub scale: (f64, f64),
    pub srid: i32,
    pub bands: Vec<Band>,
}

/// The overview factors the reference makes for a raster of this size: 2, 4, 8... up to one level past the
/// one whose larger side is below 256 pixels, and never above 1000.
pub fn overview_factors(width: usize, height: usize) -> Vec<usize> {
    let larger = width.max(height);
    let mut powers = 0;
    while larger > SMALLEST_SIDE << powers {
        powers += 1;
    }
    (1..=powers + 1).map(|p| 1usize << p).filter(|f| *f <= MAX_FACTOR).collect()
}

/// How many tiles a level wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelTiles {
    pub factor: usize,
    pub tiles: u64,
}

struct Level<W> {
    factor: usize,
    width: usize,
    height: usize,
    /// The base column each of this level's columns takes its pixel from.
    columns: Vec<usize>,
    /// The next row of this level to fill.
    next_row: usize,
    /// Per band: the row of tiles being filled, `TILE` rows of `width` pixels at most.
    rows: Vec<Vec<u8>>,
    filled: usize,
    sink: W,
    tiles: u64,
    line: Vec<u8>,
}

/// Tiles for the base level and every overview, each level written to its own sink as COPY text lines
/// (`<cartodb_id>\t<hex wkb>`).
pub struct Pyramid<W> {
    grid: Grid,
    levels: Vec<Level<W>>,
}

impl<W: Write> Pyramid<W> {
    /// `sinks` names each level's factor (1 for the base) and where its lines go.
    pub fn new(grid: Grid, sinks: Vec<(usize, W)>) -> Self {
        let levels = sinks
            .into_iter()
            .map(|(factor, sink)| {
                let (width, height) = (grid.width.div_ceil(factor), grid.height.div_ceil(factor));
                let columns = (0..width).map(|i| source_index(i, factor, grid.width)).collect();
                let rows = grid.bands.iter().map(|b| Vec::with_capacity(TILE * width * b.pixel_type.size())).collect();
                Level { factor, width, height, columns, next_row: 0, rows, filled: 0, sink, tiles: 0, line: Vec::new() }
            })
            .collect();
        Pyramid { grid, levels }
    }

    /// Takes the base rows `top..top + count`: `bands[b]` holds band `b`'s pixels for them, row by row.
    pub fn push(&mut self, top: usize, count: usize, bands: &[Vec<u8>]) -> std::io::Result<()> {
        let grid = &self.grid;
        for level in &mut self.levels {
            while level.next_row < level.height {
                let source_row = source_index(level.next_row, level.factor, grid.height);
                if source_row >= top + count {
                    break;
                }
                for (b, band) in grid.bands.iter().enumerate() {
                    let size = band.pixel_type.size();
                    let row = &bands[b][(source_row - top) * grid.width * size..][..grid.width * size];
                    let dest = &mut level.rows[b];
                    if level.factor == 1 {
                        dest.extend_from_slice(row);
                    } else {
                        for &c in &level.columns {
                            dest.extend_from_slice(&row[c * size..(c + 1) * size]);
                        }
                    }
                }
                level.filled += 1;
                level.next_row += 1;
                if level.filled == TILE || level.next_row == level.height {
                    level.write_row_of_tiles(grid)?;
                }
            }
        }
        Ok(())
    }

    /// Flushes every level; returns its sinks and how many tiles each wrote, base first.
    pub fn finish(self) -> std::io::Result<Vec<(LevelTiles, W)>> {
        self.levels
            .into_iter()
            .map(|mut level| {
                level.sink.flush()?;
                Ok((LevelTiles { factor: level.factor, tiles: level.tiles }, level.sink))
            })
            .collect()
    }
}

impl<W: Write> Level<W> {
    fn write_row_of_tiles(&mut self, grid: &Grid) -> std::io::Result<()> {
        let rows = self.filled;
        let first_row = self.next_row - rows;
        let scale = (grid.scale.0 * self.factor as f64, grid.scale.1 * self.factor as f64);
        let mut pixels: Vec<Vec<u8>> = vec![Vec::new(); grid.bands.len()];
        for left in (0..self.width).step_by(TILE) {
            let width = TILE.min(self.width - left);
            for (b, band) in grid.bands.iter().enumerate() {
                let size = band.pixel_type.size();
                pixels[b].clear();
                for r in 0..rows {
                    let start = (r * self.width + left) * size;
                    pixels[b].extend_from_slice(&self.rows[b][start..start + width * size]);
                }
            }
            let at = Placement {
                upper_left: (grid.upper_left.0 + left as f64 * scale.0, grid.upper_left.1 + first_row as f64 * scale.1),
                scale,
                srid: grid.srid,
            };
            self.tiles += 1;
            self.line.clear();
            self.line.extend_from_slice(self.tiles.to_string().as_bytes());
            self.line.push(b'\t');
            let bands: Vec<(&Band, &[u8])> = grid.bands.iter().zip(pixels.iter().map(Vec::as_slice)).collect();
            write_tile_hex(&mut self.line, &at, width as u16, rows as u16, &bands);
            self.line.push(b'\n');
            self.sink.write_all(&self.line)?;
        }
        self.rows.iter_mut().for_each(Vec::clear);
        self.filled = 0;
        Ok(())
    }
}

/// The base row (or column) an overview's `index`-th row takes its pixels from: the one at its centre.
fn source_index(index: usize, factor: usize, len: usize) -> usize {
    (index * factor + factor / 2).min(len - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::raster::wkb::PixelType;

    #[test]
    fn overviews_are_the_references_powers_of_two() {
        assert_eq!(overview_factors(100, 50), vec![2]);
        assert_eq!(overview_factors(256, 10), vec![2]);
        assert_eq!(overview_factors(257, 10), vec![2, 4]);
        assert_eq!(overview_factors(6867, 8992), vec![2, 4, 8, 16, 32, 64, 128]);
        assert_eq!(overview_factors(1 << 20, 1), vec![2, 4, 8, 16, 32, 64, 128, 256, 512]);
    }

    fn grid(width: usize, height: usize) -> Grid {
        Grid {
            width,
            height,
            upper_left: (0.0, 0.0),
            scale: (1.0, -1.0),
            srid: 3857,
            bands: vec![Band { pixel_type: PixelType::U8, nodata: None }],
        }
    }

    /// The pixels of each tile a sink got, decoded from its hex lines.
    fn tiles(lines: &[u8]) -> Vec<(u16, u16, Vec<u8>)> {
        String::from_utf8(lines.to_vec())
            .unwrap()
            .lines()
            .map(|l| {
                let wkb = hex::decode(l.split_once('\t').unwrap().1).unwrap();
                let w = u16::from_le_bytes([wkb[57], wkb[58]]);
                let h = u16::from_le_bytes([wkb[59], wkb[60]]);
                (w, h, wkb[63..].to_vec())
            })
            .collect()
    }

    #[test]
    fn strips_of_any_height_make_the_same_tiles_and_overviews_take_centre_pixels() {
        let (w, h) = (300, 200);
        let pixel = |x: usize, y: usize| ((x * 7 + y * 13) % 251) as u8;
        let image: Vec<u8> = (0..h).flat_map(|y| (0..w).map(move |x| pixel(x, y))).collect();
        for strip in [1, 50, 128, 200] {
            let mut pyramid = Pyramid::new(grid(w, h), vec![(1, Vec::new()), (4, Vec::new())]);
            for top in (0..h).step_by(strip) {
                let count = strip.min(h - top);
                pyramid.push(top, count, &[image[top * w..(top + count) * w].to_vec()]).unwrap();
            }
            let done = pyramid.finish().unwrap();
            assert_eq!(done[0].0, LevelTiles { factor: 1, tiles: 6 }, "3 columns by 2 rows of tiles");
            assert_eq!(done[1].0, LevelTiles { factor: 4, tiles: 1 }, "75 x 50 fits one tile");
            let base = tiles(&done[0].1);
            assert_eq!((base[2].0, base[2].1), (44, 128));
            assert_eq!((base[5].0, base[5].1), (44, 72));
            assert_eq!(base[4].2[0], pixel(128, 128));
            let overview = tiles(&done[1].1);
            assert_eq!((overview[0].0, overview[0].1), (75, 50));
            assert_eq!(overview[0].2[75 * 10 + 3], pixel(3 * 4 + 2, 10 * 4 + 2));
        }
    }
}
