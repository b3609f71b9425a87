//! A user's published tables as PostGIS holds them: which there are, what each holds, and its features
//! as vector tiles. Everything here reads one schema, the caller's: a table is found by name in the
//! catalog of that schema before its name (quoted) reaches any statement, so another user's table, or
//! a name that is not a table, is simply not found.
//!
//! - [`lookup`]: a table of the caller's schema by name, and its kind.
//! - [`tables`]: the list and one table's columns and first rows.
//! - [`tiles`]: Mapbox vector tiles made by PostGIS (`ST_AsMVT`) from `the_geom_webmercator`.
//! - [`raster_tiles`]: PNG tiles of a raster table, coloured by PostGIS; [`raster_wkb`]: their pixels read
//!   back from the raster WKB.

mod lookup;
mod raster_tiles;
mod raster_wkb;
mod tables;
mod tiles;

pub use lookup::TableKind;
pub use raster_tiles::raster_tile;
pub use tables::{Column, TableDetail, TableSummary, describe, list};
pub use tiles::{Tile, TileError, tile};
