//! Rasters (GeoTIFF, JPEG 2000, ERDAS Imagine, ASCII grids, PNG and JPEG with a world file) become PostGIS
//! raster tables as the reference makes them: reprojected to web mercator, cut in 128 x 128 tiles, with
//! `cartodb_id` and the raster column `the_raster_webmercator`, the raster constraints, a GiST index on the
//! tiles' hulls, and overview tables `o_<factor>_<table>` registered in `raster_overviews`.
//!
//! A reader child warps and tiles (see [`warp`]); here each level streams into a staging table of its own,
//! on a connection of its own, all at once, and each table gets its key, index and constraints as soon as
//! its tiles are in (see [`tables`]).

mod constraints;
mod mercator;
mod pyramid;
mod separable;
mod shape;
mod tables;
pub mod warp;
mod window;
mod wkb;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use tokio::sync::mpsc;

use super::ogr::process::{GdalReader, Request};
use crate::errors::{ImportError, codes};
use crate::load::table::StagingTable;
use crate::load::{LoadContext, LoadedLayer, Overview, Stage};
pub use shape::RASTER_COLUMN;
use shape::{MAX_LINE, Piece, RasterSummary};

/// Loads the raster at `path` into a staging table and its overviews into tables of their own.
pub async fn load(
    ctx: &LoadContext<'_>,
    gdal: &GdalReader,
    path: &Path,
    ext: &str,
    table_name: String,
    index: usize,
    max_bytes: u64,
) -> Result<LoadedLayer, ImportError> {
    (ctx.report)(Stage::Raster);
    (ctx.report)(Stage::Importing);
    let base = StagingTable::new(ctx.job_id, ctx.attempt, index, Vec::new());
    let request = Request::Raster { path: path.to_path_buf(), ext: ext.to_string(), max_bytes };
    let (sender, mut pieces) = mpsc::channel::<Piece>(crate::load::copy::CHUNKS_IN_FLIGHT);
    let reader = gdal.clone();
    let producer = tokio::task::spawn_blocking(move || -> Result<RasterSummary, ImportError> {
        let mut running = reader.spawn(&request)?;
        split(&mut running.stdout, &sender)?;
        serde_json::from_value(running.finish()?)
            .map_err(|e| ImportError::unknown(format!("the raster reader's summary: {e}")))
    });
    // Every level streams into its own table on its own connection, at once; each is finished (key, index,
    // constraints) as soon as its tiles are in.
    let mut tables: Vec<(usize, StagingTable)> = Vec::new();
    let mut loaders = tokio::task::JoinSet::new();
    let mut senders: std::collections::HashMap<usize, mpsc::Sender<Vec<u8>>> = Default::default();
    let mut current = None;
    let mut fed = Ok(());
    while let Some(piece) = pieces.recv().await {
        match piece {
            Piece::Level(factor) => {
                if let std::collections::hash_map::Entry::Vacant(level) = senders.entry(factor) {
                    let table = match factor {
                        1 => base.clone(),
                        f => StagingTable { name: format!("{}_o{f}", base.name), columns: Vec::new() },
                    };
                    let (sender, lines) = mpsc::channel(crate::load::copy::CHUNKS_IN_FLIGHT);
                    loaders.spawn(tables::load_level(ctx.pool.clone(), table.clone(), lines));
                    tables.push((factor, table));
                    level.insert(sender);
                }
                current = Some(factor);
            }
            Piece::Lines(lines) => {
                let Some(sender) = current.and_then(|f| senders.get(&f)) else {
                    fed = Err(ImportError::unknown("the raster reader sent tiles before their level"));
                    break;
                };
                // A loader that stopped has its error waiting in the join set.
                if sender.send(lines).await.is_err() {
                    break;
                }
            }
        }
    }
    drop(pieces);
    drop(senders);
    let mut loaded = fed;
    while let Some(done) = loaders.join_next().await {
        let result = done.unwrap_or_else(|e| Err(ImportError::unknown(format!("a raster level's load failed: {e}"))));
        if let (Ok(()), Err(e)) = (&loaded, result) {
            loaded = Err(e);
            loaders.abort_all();
        }
    }
    let read = producer.await.unwrap_or_else(|e| Err(ImportError::unknown(format!("the raster load panicked: {e}"))));
    let summary = match (read, loaded) {
        (Ok(summary), Ok(())) => summary,
        // The reader's own error (a file's problem) says more than the COPY it cut short...
        (Err(e), _) if e.code != codes::UNKNOWN => return Err(e),
        // ... and a load's error more than the reader's being stopped because of it.
        (_, Err(e)) | (Err(e), Ok(())) => return Err(e),
    };
    let rows = summary.levels.first().map_or(0, |l| l.tiles as i64);
    tracing::info!(table = %table_name, tiles = rows, levels = tables.len(), "raster loaded");
    let overviews =
        tables.into_iter().filter(|(f, _)| *f > 1).map(|(factor, staging)| Overview { factor, staging }).collect();
    Ok(LoadedLayer {
        staging: base,
        proposed_name: table_name,
        rows,
        warnings: serde_json::Map::new(),
        rejections: Default::default(),
        overviews: Some(overviews),
    })
}

/// Reads the child's output and hands it on in pieces: a level's header, then its lines in chunks.
fn split(out: &mut impl std::io::Read, sender: &mpsc::Sender<Piece>) -> Result<(), ImportError> {
    let gone = || ImportError::unknown("the raster load stopped");
    let mut reader = BufReader::with_capacity(1 << 20, out);
    let mut chunk = Vec::with_capacity(2 * crate::load::copy::CHUNK_BYTES);
    loop {
        let start = chunk.len();
        let n = (&mut reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut chunk)
            .map_err(|e| ImportError::unknown(format!("reading the raster reader: {e}")))?;
        if n == 0 {
            break;
        }
        if chunk.last() != Some(&b'\n') {
            return Err(ImportError::new(codes::UNABLE_TO_LOAD, "the raster reader sent a line without its end"));
        }
        if chunk[start] == b'#' {
            let factor = std::str::from_utf8(&chunk[start + 1..chunk.len() - 1])
                .ok()
                .and_then(|f| f.parse().ok())
                .ok_or_else(|| ImportError::unknown("the raster reader sent a malformed level"))?;
            chunk.truncate(start);
            if !chunk.is_empty() {
                sender.blocking_send(Piece::Lines(std::mem::take(&mut chunk))).map_err(|_| gone())?;
            }
            sender.blocking_send(Piece::Level(factor)).map_err(|_| gone())?;
        } else if chunk.len() >= crate::load::copy::CHUNK_BYTES {
            sender.blocking_send(Piece::Lines(std::mem::take(&mut chunk))).map_err(|_| gone())?;
        }
    }
    if !chunk.is_empty() {
        sender.blocking_send(Piece::Lines(chunk)).map_err(|_| gone())?;
    }
    Ok(())
}
