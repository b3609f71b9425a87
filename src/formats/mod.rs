//! Readers, and the choice among them. A source file is recognised by its content as much as by its name,
//! unpacked if it is an archive (nested archives too), and every supported file inside becomes one table
//! per layer, up to a maximum per import. In an archive, a file that fails is reported in the warnings and
//! the others still import. Delimited text and JSON are read from their start in every pass, so they may
//! come straight from the staging store ([`reads_from_start`]); every other reader needs a local file.

pub mod csv;
pub mod json;
pub mod ogr;
pub mod raster;
pub mod sheet;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::detect::{self, Kind};
use crate::errors::stopped;
use crate::errors::{ImportError, codes};
use crate::load::names::{sanitize_table_name, table_name_for_file};
use crate::load::{LoadContext, LoadedLayer, Stage, blocking, table};
use crate::source::disk::DiskReserve;
use crate::source::input::Input;
use crate::unpack::{self, Budget, Limits};
use ogr::process::GdalReader;

/// Per-import limits on what a source may turn into.
#[derive(Debug, Clone)]
pub struct SourceLimits {
    /// Tables one import may create; further files are skipped and named in the warnings.
    pub max_tables: usize,
    pub unpack: Limits,
    /// The disk's free-space reserve, which unpacking stops before eating into.
    pub reserve: Option<DiskReserve>,
}

/// Bytes of a file's start that tell its format: what [`detect::effective_extension`] looks at.
pub const HEAD_BYTES: usize = 64 << 10;

/// Whether the file `name`, which starts with `head` (its first [`HEAD_BYTES`]), is read only from its
/// start, pass after pass (delimited text; GeoJSON, JSON and NDJSON read natively), and so needs no local
/// file. Archives, spreadsheets, rasters and GDAL's formats (ESRI JSON and TopoJSON too) seek: they do.
pub fn reads_from_start(name: &str, head: &[u8]) -> bool {
    // A zip is never read from its start, whatever it holds.
    match detect::effective_extension(name, head, || "zip").as_deref().map(detect::kind_of) {
        Some(Kind::Delimited) => true,
        Some(Kind::Json) => detect::json_flavour(head).is_none(),
        _ => false,
    }
}

/// One file to read, found directly or inside an archive.
#[derive(Debug, Clone)]
struct Candidate {
    /// The file, by its own name (which gives the CSV reader its extension hint).
    input: Input,
    /// Its name as the user knows it (inside the archive).
    display: String,
    ext: String,
    table_name: String,
}

/// The layers a source made, and the warnings about the parts that did not import.
pub struct SourceLoad {
    pub layers: Vec<LoadedLayer>,
    pub warnings: Map<String, Value>,
}

/// Loads every table the file `input` holds. `work_dir` receives unpacked archives.
pub async fn load_source(
    ctx: &LoadContext<'_>,
    gdal: &GdalReader,
    input: &Input,
    work_dir: &Path,
    limits: SourceLimits,
) -> Result<SourceLoad, ImportError> {
    let (source, dir) = (input.clone(), work_dir.join("unpacked"));
    let stop = ctx.stop.clone();
    let (reserve, unpack_limits) = (limits.reserve.clone(), limits.unpack);
    let candidates = blocking(move || {
        let found = find_candidates(&source, &dir, unpack_limits, reserve, &stop);
        if stop.is_cancelled() {
            // The job's files may already have been removed: what this pass wrote since goes too.
            let _ = std::fs::remove_dir_all(&dir);
            return Err(stopped());
        }
        found
    })
    .await?;
    if candidates.is_empty() {
        return Err(ImportError::new(codes::UNSUPPORTED_FORMAT, "the archive holds no file in a format we import"));
    }
    (ctx.report)(Stage::Guessing);
    let single = candidates.len() == 1;
    let mut layers: Vec<LoadedLayer> = Vec::new();
    let mut failed = Vec::new();
    let mut first_error = None;
    let mut skipped = Vec::new();
    for candidate in candidates {
        if layers.len() >= limits.max_tables {
            skipped.push(candidate.display);
            continue;
        }
        match load_candidate(ctx, gdal, &candidate, layers.len(), unpack_limits.max_total_bytes).await {
            Ok(mut loaded) => {
                // A multi-layer file may bring more tables than are left.
                while layers.len() + loaded.len() > limits.max_tables {
                    let extra = loaded.pop().expect("more layers than allowed means at least one");
                    skipped.push(format!("{} ({})", candidate.display, extra.proposed_name));
                    if let Ok(mut conn) = ctx.pool.acquire().await {
                        let _ = extra.staging.drop(&mut conn).await;
                    }
                }
                layers.extend(loaded);
            }
            Err(e) if single => return Err(e),
            Err(e) => {
                tracing::warn!(file = %candidate.display, code = e.code, detail = %e.detail, "a file of the archive failed");
                failed.push(json!({ "file": candidate.display, "error_code": e.code, "message": e.detail }));
                first_error.get_or_insert(e);
            }
        }
    }
    if layers.is_empty() {
        let _ = table::drop_attempt_tables(ctx.pool, ctx.job_id, ctx.attempt).await;
        return Err(
            first_error.unwrap_or_else(|| ImportError::new(codes::UNSUPPORTED_FORMAT, "nothing could be imported"))
        );
    }
    let mut warnings = Map::new();
    if !failed.is_empty() {
        warnings.insert("failed_files".into(), failed.into());
    }
    if !skipped.is_empty() {
        warnings.insert("max_tables_per_import".into(), limits.max_tables.into());
        warnings.insert("skipped_files".into(), json!(skipped));
    }
    Ok(SourceLoad { layers, warnings })
}

async fn load_candidate(
    ctx: &LoadContext<'_>,
    gdal: &GdalReader,
    c: &Candidate,
    index: usize,
    max_pixel_bytes: u64,
) -> Result<Vec<LoadedLayer>, ImportError> {
    match detect::kind_of(&c.ext) {
        Kind::Delimited => Ok(vec![csv::load(ctx, &c.input, c.table_name.clone(), index).await?]),
        Kind::Json => match json_flavour_of(&c.input).await? {
            Some(flavour) => ogr::load(ctx, gdal, local(c)?, flavour, &c.table_name, index).await,
            None => Ok(vec![json::load(ctx, &c.input, c.table_name.clone(), index).await?]),
        },
        Kind::Spreadsheet => Ok(vec![sheet::load(ctx, gdal, local(c)?, &c.ext, c.table_name.clone(), index).await?]),
        Kind::Vector => ogr::load(ctx, gdal, local(c)?, &c.ext, &c.table_name, index).await,
        Kind::Raster => {
            let (path, table_name) = (local(c)?, c.table_name.clone());
            Ok(vec![raster::load(ctx, gdal, path, &c.ext, table_name, index, max_pixel_bytes).await?])
        }
        Kind::Archive | Kind::Unknown if c.ext == detect::VRT => Err(ImportError::new(
            codes::UNSUPPORTED_FORMAT,
            format!(
                "'{}' is a GDAL virtual dataset (VRT): it only points at other files or URLs, which are never \
                 read. Send the data itself",
                c.display
            ),
        )),
        Kind::Archive | Kind::Unknown => Err(unsupported(&c.display)),
    }
}

fn unsupported(name: &str) -> ImportError {
    ImportError::new(
        codes::UNSUPPORTED_FORMAT,
        format!("'{name}' is not in a format we import (see the list of supported formats)"),
    )
}

/// The file a reader that seeks needs. A staged object is only ever streamed when it
/// [`reads_from_start`], so a candidate without a local file here is a bug, reported as such.
fn local(c: &Candidate) -> Result<&Path, ImportError> {
    c.input.path().ok_or_else(|| {
        ImportError::unknown(format!("'{}' ({}) was streamed from the store but needs a local file", c.display, c.ext))
    })
}

/// The extension `input` is read as. A local file that cannot be read is named by its extension (its
/// reader then says what is wrong); a staged object's store that fails fails the import here.
fn effective_extension(input: &Input) -> Result<Option<String>, ImportError> {
    let Some(path) = input.path() else {
        return Ok(detect::effective_extension(input.name(), &input.head(HEAD_BYTES)?, || "zip"));
    };
    if path.is_dir() {
        return Ok(input.name().to_ascii_lowercase().ends_with(".gdb").then(|| "gdb".to_string()));
    }
    let head = input.head(HEAD_BYTES).unwrap_or_default();
    Ok(detect::effective_extension(input.name(), &head, || unpack::zip_flavour(path)))
}

/// The files to import: the source itself, or what its archive holds.
fn find_candidates(
    input: &Input,
    work_dir: &Path,
    limits: Limits,
    reserve: Option<DiskReserve>,
    stop: &CancellationToken,
) -> Result<Vec<Candidate>, ImportError> {
    let name = input.name();
    let Some(ext) = effective_extension(input)? else {
        if input.size().unwrap_or(0) == 0 {
            return Err(ImportError::new(codes::EMPTY_FILE, "the file is empty (0 bytes)"));
        }
        return Err(unsupported(name));
    };
    if !unpack::is_archive(&ext) {
        return Ok(vec![Candidate {
            input: input.clone(),
            display: name.to_string(),
            table_name: table_name_for_file(name),
            ext,
        }]);
    }
    let Some(path) = input.path() else {
        return Err(ImportError::unknown(format!(
            "the archive '{name}' was streamed from the store but needs a local file"
        )));
    };
    let mut budget = Budget::new(limits, stop.clone()).keeping(reserve);
    let mut found = Vec::new();
    unpack_into(path, name, &ext, work_dir, &mut budget, limits, 1, &mut found)?;
    Ok(found)
}

#[allow(clippy::too_many_arguments)]
fn unpack_into(
    archive: &Path,
    archive_name: &str,
    ext: &str,
    dest: &Path,
    budget: &mut Budget,
    limits: Limits,
    depth: usize,
    found: &mut Vec<Candidate>,
) -> Result<(), ImportError> {
    if depth > limits.max_depth {
        return Err(unpack::corrupt(format!("archives are nested more than {} deep", limits.max_depth)));
    }
    unpack::extract(archive, ext, dest, budget)?;
    // A KMZ's document is named after the KMZ (its inner doc.kml says nothing).
    let kmz_name = (ext == "kmz").then(|| table_name_for_file(archive_name));
    collect(dest, dest, budget, limits, depth, kmz_name.as_deref(), found)
}

/// Walks unpacked files in name order, keeping files with a known extension and unpacking archives.
fn collect(
    root: &Path,
    dir: &Path,
    budget: &mut Budget,
    limits: Limits,
    depth: usize,
    kmz_name: Option<&str>,
    found: &mut Vec<Candidate>,
) -> Result<(), ImportError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| ImportError::new(codes::FILE_IO, format!("cannot read the unpacked files: {e}")))?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else { continue };
        if unpack::is_clutter(&name) {
            continue;
        }
        let display = path.strip_prefix(root).unwrap_or(&path).display().to_string();
        let meta = std::fs::symlink_metadata(&path).map_err(|e| ImportError::new(codes::FILE_IO, e.to_string()))?;
        if meta.is_dir() {
            if name.to_ascii_lowercase().ends_with(".gdb") {
                let input = Input::file(path, &name);
                found.push(Candidate { table_name: table_name_for_file(&name), input, display, ext: "gdb".into() });
            } else {
                collect(root, &path, budget, limits, depth, kmz_name, found)?;
            }
            continue;
        }
        if !meta.is_file() || detect::known_extension(&name).is_none() {
            continue; // shapefile parts, metadata and unknown files ride along or are ignored
        }
        let file = Input::file(&path, &name);
        let Some(ext) = effective_extension(&file)? else { continue };
        // An image in an archive is a raster only when something places it (a world file or GDAL's
        // .aux.xml): otherwise it is a thumbnail or a logo riding along.
        if matches!(ext.as_str(), "png" | "jpg" | "jpeg") && !is_placed(&path) {
            continue;
        }
        if unpack::is_archive(&ext) {
            let inner = path.with_file_name(format!("{name}.unpacked"));
            unpack_into(&path, &name, &ext, &inner, budget, limits, depth + 1, found)?;
            continue;
        }
        let table_name = match kmz_name {
            Some(k) if ext == "kml" => sanitize_table_name(k),
            _ => table_name_for_file(&name),
        };
        found.push(Candidate { input: file, display, ext, table_name });
    }
    Ok(())
}

/// Whether an image has a world file (`.pgw`, `.jgw`, `.pngw`, `.jpgw`, `.wld`) or an `.aux.xml` beside it.
fn is_placed(image: &Path) -> bool {
    let Some(ext) = image.extension().and_then(|e| e.to_str()) else { return false };
    let lower = ext.to_ascii_lowercase();
    let first_last = format!("{}{}w", &lower[..1], &lower[lower.len() - 1..]);
    [
        image.with_extension(&first_last),
        image.with_extension(first_last.to_ascii_uppercase()),
        image.with_extension(format!("{lower}w")),
        image.with_extension("wld"),
        image.with_file_name(format!("{}.aux.xml", image.file_name().unwrap_or_default().to_string_lossy())),
    ]
    .iter()
    .any(|n| n.is_file())
}

/// ESRI JSON or TopoJSON (read by GDAL), from the file's first bytes; None for GeoJSON and plain JSON.
async fn json_flavour_of(input: &Input) -> Result<Option<&'static str>, ImportError> {
    let input = input.clone();
    blocking(move || Ok(detect::json_flavour(&input.head(4096)?))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_delimited_text_and_native_json_are_read_from_their_start() {
        let geojson = br#"{"type":"FeatureCollection","features":[]}"#;
        assert!(reads_from_start("points.csv", b"a,b\n1,2\n"));
        assert!(reads_from_start("points.tsv", b"a\tb\n1\t2\n"));
        // A CSV saved as a workbook is a CSV; a file without a name is what it holds.
        assert!(reads_from_start("points.xls", b"a,b\n1,2\n"));
        assert!(reads_from_start("upload", geojson));
        assert!(reads_from_start("parcels.geojson", geojson));
        assert!(reads_from_start("rows.json", b"{\"a\":1}\n{\"a\":2}\n"));
        let esri = br#"{"geometryType":"esriGeometryPoint","features":[{"attributes":{}}]}"#;
        assert!(!reads_from_start("esri.json", esri));
        assert!(!reads_from_start("topo.json", br#"{"type":"Topology","objects":{}}"#));
        assert!(!reads_from_start("places.zip", b"PK\x03\x04"));
        assert!(!reads_from_start("points.csv", b"PK\x03\x04"));
        assert!(!reads_from_start("points.csv.gz", b"\x1f\x8b\x08"));
        assert!(!reads_from_start("book.xlsx", b"PK\x03\x04"));
        assert!(!reads_from_start("roads.shp", b"\x00\x00\x27\x0a"));
        assert!(!reads_from_start("places.kml", b"<?xml version=\"1.0\"?><kml>"));
        assert!(!reads_from_start("dem.tif", b"II*\x00"));
        assert!(!reads_from_start("leak.csv", b"<OGRVRTDataSource></OGRVRTDataSource>"));
    }
}
