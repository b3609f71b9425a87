//! The reader child's side of a raster import: open the file with its format's driver only, warp it to
//! web mercator block by block (a warped VRT: nothing is written to disk, and memory is GDAL's block
//! cache plus one strip of rows), and write the tiles of every level to stdout. The overview levels are
//! cut in the same pass: the large ones stream interleaved with the base (the worker loads every level on
//! a connection of its own at once), the small ones wait in unnamed scratch files beside the upload and
//! follow.
//!
//! Output: COPY text lines (`<id>\t<hex wkb>`, one per tile), each run of a level's lines preceded by a
//! line `#<factor>`.

use std::ffi::CStr;
use std::io::{BufWriter, Seek, Write};
use std::path::Path;

use gdal::{Dataset, DatasetOptions, GdalOpenFlags};

use super::mercator::{no_crs, to_web_mercator};
use super::pyramid::{Grid, LevelTiles, Pyramid, TILE, overview_factors};
use super::separable::Remap;
use super::shape::{MAX_BANDS, RasterSummary, WEB_MERCATOR};
use super::window::{self, Window, unreadable};
use super::wkb::{Band, PixelType};
use crate::errors::{ImportError, codes};
use crate::formats::ogr::confine;

/// GDAL's block cache in a reader child, in MB: enough for the warp's source blocks, and far below the
/// child's memory limit (GDAL's default is a share of the machine's memory).
const BLOCK_CACHE_MB: &str = "64";
/// Levels up to this factor stream as they are cut, each to its own table at once (the base, 1/4 and 1/16
/// of its size); the coarser ones, 1/48 of the base together, wait in scratch files and follow.
const STREAMED_FACTOR: usize = 4;
/// A warp may make a raster larger (a skewed footprint), but not past this many times its pixels (plus
/// a margin for small ones): beyond that the projection tore it apart (at the antimeridian, say).
const MAX_GROWTH: usize = 16;

/// Reads the raster at `path` (effective extension `ext`) and writes its tiles to `out`; scratch files
/// for the overviews go to `scratch`.
pub fn write_tiles(
    path: &Path,
    ext: &str,
    max_bytes: u64,
    out: &mut impl Write,
    scratch: &Path,
) -> Result<RasterSummary, ImportError> {
    let _ = gdal::config::set_config_option("GDAL_CACHEMAX", BLOCK_CACHE_MB);
    let drivers = confine::raster_drivers_for(ext).ok_or_else(|| unreadable("no raster driver reads this file"))?;
    confine::keep_only(drivers);
    let options = DatasetOptions {
        open_flags: GdalOpenFlags::GDAL_OF_RASTER | GdalOpenFlags::GDAL_OF_READONLY,
        allowed_drivers: Some(drivers),
        ..Default::default()
    };
    let source = Dataset::open_ex(path, options).map_err(|e| {
        unreadable(&format!("GDAL cannot open it (the file is damaged, truncated or not what its name says): {e}"))
    })?;
    let bands = source_bands(&source)?;
    let warped = to_web_mercator(&source, path)?;
    let dataset = warped.dataset.as_ref().unwrap_or(&source);
    let (width, height) = dataset.raster_size();
    let (source_width, source_height) = source.raster_size();
    if width.saturating_mul(height) > MAX_GROWTH * source_width * source_height + (1 << 20) {
        return Err(ImportError::new(
            codes::DATASET_TOO_BIG,
            format!(
                "in web mercator the raster would be {width} x {height} pixels, against {source_width} x \
                 {source_height} in its own projection: it probably crosses the antimeridian or a pole in a way \
                 web mercator cannot show"
            ),
        ));
    }
    let pixel_bytes: u64 = bands.iter().map(|b| b.pixel_type.size() as u64).sum();
    let total = (width as u64).saturating_mul(height as u64).saturating_mul(pixel_bytes);
    if total > max_bytes {
        return Err(ImportError::new(
            codes::DATASET_TOO_BIG,
            format!(
                "the raster holds {width} x {height} pixels ({} MiB) in web mercator, more than the {} MiB an import \
                 may unpack (GEOIMPORT_MAX_UNPACKED_BYTES)",
                total >> 20,
                max_bytes >> 20
            ),
        ));
    }
    let gt = dataset.geo_transform().map_err(|e| no_crs(&format!("it has no georeference: {e}")))?;
    let upper_left = (gt[0] + warped.shift_x, gt[3]);
    let bands = warped_bands(dataset, bands);
    let grid = Grid { width, height, upper_left, scale: (gt[1], gt[5]), srid: WEB_MERCATOR, bands };
    let factors = overview_factors(width, height);
    let written = |e: std::io::Error| ImportError::unknown(format!("writing the tiles: {e}"));
    let shared = std::rc::Rc::new(std::cell::RefCell::new(Interleaved { out: &mut *out, current: 0 }));
    let mut sinks: Vec<(usize, Box<dyn Write + '_>)> = vec![(1, Box::new(Level { factor: 1, to: shared.clone() }))];
    let mut files = Vec::new();
    for &factor in &factors {
        if factor <= STREAMED_FACTOR {
            sinks.push((factor, Box::new(Level { factor, to: shared.clone() })));
            continue;
        }
        let file = tempfile::tempfile_in(scratch).map_err(|e| ImportError::new(codes::FILE_IO, e.to_string()))?;
        files.push((factor, file.try_clone().map_err(|e| ImportError::new(codes::FILE_IO, e.to_string()))?));
        sinks.push((factor, Box::new(BufWriter::with_capacity(64 << 10, file))));
    }
    // The common case (longitude/latitude on WGS 84) is warped by lookups; any other by GDAL.
    let plain = warped.dataset.is_some() && warped.shift_x == 0.0;
    let remap = plain.then(|| Remap::new(&source, gt, width, height)).flatten();
    tracing::debug!(separable = remap.is_some(), "warping to web mercator");
    // What a pixel outside the source becomes: the band's nodata value, or 0 as GDAL's warp leaves it.
    let fills: Vec<Vec<u8>> = grid
        .bands
        .iter()
        .map(|b| b.nodata.and_then(|v| b.pixel_type.encode(v)).unwrap_or_else(|| vec![0; b.pixel_type.size()]))
        .collect();
    let pixel_types: Vec<PixelType> = grid.bands.iter().map(|b| b.pixel_type).collect();
    let mut pyramid = Pyramid::new(grid, sinks);
    let mut strip: Vec<Vec<u8>> = pixel_types.iter().map(|_| Vec::new()).collect();
    let mut line = Vec::new();
    for top in (0..height).step_by(TILE) {
        let rows = TILE.min(height - top);
        for (i, pixel_type) in pixel_types.iter().enumerate() {
            match &remap {
                Some(remap) => {
                    remap.read_rows(&source, i + 1, *pixel_type, &fills[i], top, rows, &mut strip[i], &mut line)?
                }
                None => read_rows(dataset, i + 1, *pixel_type, top, rows, width, &mut strip[i])?,
            }
        }
        pyramid.push(top, rows, &strip).map_err(written)?;
    }
    let levels: Vec<LevelTiles> = pyramid.finish().map_err(written)?.into_iter().map(|(tiles, _)| tiles).collect();
    drop(shared);
    for (factor, mut file) in files {
        file.rewind().map_err(written)?;
        out.write_all(format!("#{factor}\n").as_bytes()).map_err(written)?;
        std::io::copy(&mut file, out).map_err(written)?;
    }
    out.flush().map_err(written)?;
    Ok(RasterSummary { levels })
}

/// The output the streamed levels share, and the level its last line belonged to.
struct Interleaved<'a, W> {
    out: &'a mut W,
    current: usize,
}

/// One streamed level's sink: a line of another level than the last is preceded by `#<factor>`. The
/// pyramid writes whole lines, so levels switch only between lines.
struct Level<'a, W> {
    factor: usize,
    to: std::rc::Rc<std::cell::RefCell<Interleaved<'a, W>>>,
}

impl<W: Write> Write for Level<'_, W> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut to = self.to.borrow_mut();
        if to.current != self.factor {
            to.current = self.factor;
            to.out.write_all(format!("#{}\n", self.factor).as_bytes())?;
        }
        to.out.write_all(line)?;
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.to.borrow_mut().out.flush()
    }
}

/// Each band's pixel type and nodata value, as the source has them.
fn source_bands(source: &Dataset) -> Result<Vec<Band>, ImportError> {
    if source.raster_count() == 0 {
        return Err(unreadable("it holds no raster band"));
    }
    if source.raster_count() > MAX_BANDS {
        return Err(ImportError::new(
            codes::UNABLE_TO_LOAD,
            format!("the raster has {} bands; at most {MAX_BANDS} are imported", source.raster_count()),
        ));
    }
    (1..=source.raster_count())
        .map(|i| {
            let band = source.rasterband(i).map_err(|e| unreadable(&e.to_string()))?;
            // SAFETY: a band handle of an open dataset.
            let gdal_type = unsafe { gdal_sys::GDALGetRasterDataType(band.c_rasterband()) };
            let signed_byte =
                gdal::Metadata::metadata_item(&band, "PIXELTYPE", "IMAGE_STRUCTURE").as_deref() == Some("SIGNEDBYTE");
            let pixel_type = pixel_type(gdal_type, signed_byte).ok_or_else(|| {
                // SAFETY: GDAL returns a static name for any type code.
                let name = unsafe { CStr::from_ptr(gdal_sys::GDALGetDataTypeName(gdal_type)) };
                ImportError::new(
                    codes::UNABLE_TO_LOAD,
                    format!(
                        "band {i} holds {} values, which a PostGIS raster cannot hold (it holds 8, 16 and 32-bit \
                         integers and 32 and 64-bit floats)",
                        name.to_string_lossy()
                    ),
                )
            })?;
            Ok(Band { pixel_type, nodata: band.no_data_value().filter(|v| pixel_type.encode(*v).is_some()) })
        })
        .collect()
}

fn pixel_type(gdal_type: gdal_sys::GDALDataType::Type, signed_byte: bool) -> Option<PixelType> {
    use gdal_sys::GDALDataType as T;
    Some(match gdal_type {
        T::GDT_Byte if signed_byte => PixelType::I8,
        T::GDT_Byte => PixelType::U8,
        T::GDT_Int16 => PixelType::I16,
        T::GDT_UInt16 => PixelType::U16,
        T::GDT_Int32 => PixelType::I32,
        T::GDT_UInt32 => PixelType::U32,
        T::GDT_Float32 => PixelType::F32,
        T::GDT_Float64 => PixelType::F64,
        _ => return None,
    })
}

/// The source's nodata values, unless the warp gave a band its own.
fn warped_bands(dataset: &Dataset, source: Vec<Band>) -> Vec<Band> {
    source
        .into_iter()
        .enumerate()
        .map(|(i, band)| {
            let warped = dataset.rasterband(i + 1).ok().and_then(|b| b.no_data_value());
            Band { nodata: warped.filter(|v| band.pixel_type.encode(*v).is_some()).or(band.nodata), ..band }
        })
        .collect()
}

/// Band `index`'s pixels of rows `top..top + rows`, in its own type, into `buf`.
fn read_rows(
    dataset: &Dataset,
    index: usize,
    pixel_type: PixelType,
    top: usize,
    rows: usize,
    width: usize,
    buf: &mut Vec<u8>,
) -> Result<(), ImportError> {
    buf.resize(rows * width * pixel_type.size(), 0);
    let strip = Window { left: 0, top, width, height: rows };
    window::read(dataset, index, &strip, buf, || format!("its pixels (rows {top} to {})", top + rows))
}
