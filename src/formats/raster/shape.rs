//! What the raster modules share: the table's shape, and what the reader child sends.

use serde::{Deserialize, Serialize};

use super::pyramid::{LevelTiles, TILE};

/// Rasters are loaded in this SRID, as the reference's are.
pub const WEB_MERCATOR: i32 = 3857;
/// The raster column, named as the reference names it.
pub const RASTER_COLUMN: &str = "the_raster_webmercator";
/// Bands a raster may have: a tile's line holds every band, and must stay small.
pub const MAX_BANDS: usize = 64;
/// The longest tile line: 128 x 128 pixels of 8 bytes in every band, in hex, with room for the header.
pub const MAX_LINE: u64 = (2 * MAX_BANDS * (TILE * TILE * 8 + 16) + 4096) as u64;

/// What the reader child made of a raster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RasterSummary {
    /// Tiles per level, base first.
    pub levels: Vec<LevelTiles>,
}

/// What the child's output says next.
pub enum Piece {
    /// The tiles that follow belong to the level of this factor.
    Level(usize),
    /// COPY text lines, whole.
    Lines(Vec<u8>),
}
