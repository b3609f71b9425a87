//! Everything else, read with GDAL: Shapefile, KML, GPX, GeoPackage, OSM, MapInfo, FileGDB, GML,
//! FlatGeobuf, DXF; one table per non-empty layer. Field types come from the source's schema; features are
//! written through the same binary COPY path as every other reader (never ogr2ogr, never INSERTs).
//!
//! GDAL runs in child processes ([`process`]): one learns the layers, then one per layer streams that
//! layer's features as binary COPY, which this process forwards to PostgreSQL.

pub mod child;
pub mod confine;
mod failures;
mod fields;
mod geometry;
mod plan;
pub mod process;

use std::ffi::CStr;
use std::path::{Path, PathBuf};

use gdal::vector::LayerAccess;
use gdal::{Dataset, DatasetOptions, GdalOpenFlags};

use crate::errors::{ImportError, codes};
use crate::load::copy::{CHUNK_BYTES, CopyBuffer};
use crate::load::geometry::{encode_pair, fit_for_postgis};
use crate::load::names::{CARTO_COLUMNS, sanitize_table_name, unique_column_names};
use crate::load::table::{StagingTable, TableColumn};
use crate::load::tabular::{EncodeStats, check_width, receiver_gone};
use crate::load::{LoadContext, LoadedLayer, Stage, blocking, load_into_staging};
use fields::FieldKind;
use plan::LayerPlan;
use process::{GdalReader, Request};

/// Most layers one file may have (the reference's limit; more fail with 1019).
pub const MAX_LAYERS: usize = 50;

/// How to open a file: where it is, as what, and GDAL's open options for it.
#[derive(Debug, Clone)]
struct Source {
    path: PathBuf,
    options: Vec<String>,
    /// The effective extension, which decides the only drivers that may read it.
    ext: String,
}

impl Source {
    /// Opens the file with its format's drivers only (in the reader child, where every other driver is
    /// gone too: see [`confine`]).
    fn open(&self) -> Result<Dataset, ImportError> {
        let drivers = confine::drivers_for(&self.ext).ok_or_else(|| {
            ImportError::new(codes::UNSUPPORTED_FORMAT, format!("'.{}' files are not read with GDAL", self.ext))
        })?;
        confine::keep_only(drivers);
        let options: Vec<&str> = self.options.iter().map(String::as_str).collect();
        Dataset::open_ex(
            &self.path,
            DatasetOptions {
                open_flags: GdalOpenFlags::GDAL_OF_VECTOR | GdalOpenFlags::GDAL_OF_READONLY,
                allowed_drivers: Some(drivers),
                open_options: (!options.is_empty()).then_some(options.as_slice()),
                ..Default::default()
            },
        )
        .map_err(|_| {
            ImportError::new(
                codes::UNSUPPORTED_FORMAT,
                format!("GDAL could not read the file as {}", drivers.join(" or ")),
            )
        })
    }
}

/// Loads every non-empty layer of a GDAL-readable file. `ext` is the file's effective extension and
/// `stem_name` its sanitized table name; staging tables are numbered from `first_index`.
pub async fn load(
    ctx: &LoadContext<'_>,
    gdal: &GdalReader,
    path: &Path,
    ext: &str,
    stem_name: &str,
    first_index: usize,
) -> Result<Vec<LoadedLayer>, ImportError> {
    if ext == "kml" && only_links(path) {
        return Err(ImportError::new(
            codes::EMPTY_KML,
            "the KML holds no places of its own, only a link to another KML file",
        ));
    }
    if matches!(ext, "tab") {
        confine::check_mapinfo(path)?;
    }
    let mut options = open_options(path, ext)?;
    options.extend(confine::open_options_for(ext).iter().map(|o| o.to_string()));
    let max_rows = ctx.user.max_rows_per_table;
    let discover = Request::Discover {
        path: path.to_path_buf(),
        options: options.clone(),
        ext: ext.to_string(),
        stem: stem_name.to_string(),
        max_rows,
    };
    let reader = gdal.clone();
    let plans: Vec<LayerPlan> = blocking(move || reader.call(&discover)).await?;
    (ctx.report)(Stage::Importing);
    let osm = matches!(ext, "osm" | "pbf");
    let mut layers = Vec::with_capacity(plans.len());
    for (n, plan) in plans.into_iter().enumerate() {
        let staging = StagingTable::new(ctx.job_id, ctx.attempt, first_index + n, plan.columns.clone());
        let request = Request::Layer {
            path: path.to_path_buf(),
            options: options.clone(),
            ext: ext.to_string(),
            plan: plan.clone(),
            max_rows,
        };
        let reader = gdal.clone();
        let loaded = load_into_staging(ctx, &staging, move |chunks| {
            let mut running = reader.spawn(&request)?;
            running.forward(|chunk| chunks.blocking_send(chunk).map_err(|_| receiver_gone()))?;
            serde_json::from_value(running.finish()?)
                .map_err(|e| ImportError::unknown(format!("the GDAL reader's counts: {e}")))
        })
        .await?;
        // OSM names its five layers whatever the file holds (counting first would read it once per
        // layer): one that stayed empty is no table.
        if osm && loaded.rows == 0 {
            let mut conn = ctx.pool.acquire().await.map_err(crate::load::load_error)?;
            staging.drop(&mut conn).await.map_err(crate::load::load_error)?;
            continue;
        }
        let mut warnings = loaded.warnings();
        let stats = &loaded.stats;
        let missing = stats.rows - stats.rows_with_geometry - stats.unreadable_geometries;
        if missing > 0 && stats.rows_with_geometry > 0 {
            warnings.insert("features_without_geometry".into(), missing.into());
        }
        if stats.reader_errors > 0 {
            let said = stats.last_reader_error.clone().unwrap_or_default();
            warnings.insert("reader_errors".into(), serde_json::json!({"count": stats.reader_errors, "last": said}));
        }
        tracing::info!(layer = %plan.table_name, rows = loaded.rows, "layer loaded");
        let rejections = loaded.rejections();
        let rows = loaded.rows as i64;
        layers.push(LoadedLayer {
            staging,
            proposed_name: plan.table_name,
            rows,
            warnings,
            rejections,
            overviews: None,
        });
    }
    if layers.is_empty() {
        return Err(ImportError::new(
            codes::EMPTY_FILE,
            "the OSM file has no nodes, ways or relations with a geometry",
        ));
    }
    Ok(layers)
}

/// Checks what GDAL would miss, and picks the open options: a shapefile needs its .dbf and .shx, and a DBF
/// that states no encoding is read in the encoding its text looks like.
fn open_options(path: &Path, ext: &str) -> Result<Vec<String>, ImportError> {
    if ext != "shp" {
        return Ok(Vec::new());
    }
    let sibling = |want: &str| -> Option<PathBuf> {
        let stem = path.file_stem()?.to_str()?.to_ascii_lowercase();
        std::fs::read_dir(path.parent()?).ok()?.flatten().map(|e| e.path()).find(|p| {
            p.file_stem().and_then(|s| s.to_str()).is_some_and(|s| s.to_ascii_lowercase() == stem)
                && p.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case(want))
        })
    };
    let missing: Vec<&str> = ["dbf", "shx"].into_iter().filter(|e| sibling(e).is_none()).collect();
    if !missing.is_empty() {
        return Err(ImportError::new(
            codes::INVALID_SHP,
            format!("the shapefile lacks its .{} part", missing.join(" and .")),
        ));
    }
    if sibling("cpg").is_some() {
        return Ok(Vec::new());
    }
    let Some(dbf) = sibling("dbf") else { return Ok(Vec::new()) };
    Ok(dbf_encoding(&dbf).map(|enc| vec![format!("ENCODING={enc}")]).unwrap_or_default())
}

/// The encoding of a DBF without a code page (its language driver byte is 0), guessed from its records.
fn dbf_encoding(dbf: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(dbf).ok()?.take(2 << 20).read_to_end(&mut head).ok()?;
    if head.len() < 32 || head[29] != 0 {
        return None; // GDAL reads the code page itself
    }
    let header_len = u16::from_le_bytes([head[8], head[9]]) as usize;
    let records = head.get(header_len..)?;
    if std::str::from_utf8(records).is_ok() {
        return Some("UTF-8".into());
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(records, true);
    Some(detector.guess(None, chardetng::Utf8Detection::Deny).name().to_ascii_uppercase())
}

/// Learns the layers to import and their columns.
fn discover(source: &Source, ext: &str, stem: &str, max_rows: Option<i64>) -> Result<Vec<LayerPlan>, ImportError> {
    let dataset = source.open()?;
    let osm = matches!(ext, "osm" | "pbf");
    let mut found = Vec::new();
    for (index, layer) in dataset.layers().enumerate() {
        let name = layer.name();
        // OSM always names its five layers; counting their features would read the file once per layer, so
        // all are loaded, and those that stay empty are dropped then.
        let keep = if osm {
            true
        } else {
            let count = layer.feature_count();
            if let Some(max) = max_rows.filter(|max| count > *max as u64) {
                return Err(too_many_rows(max));
            }
            count > 0
        };
        if keep {
            found.push((index, name));
        }
    }
    if found.is_empty() {
        return Err(ImportError::new(codes::EMPTY_FILE, "the file has no features"));
    }
    if found.len() > MAX_LAYERS {
        return Err(ImportError::new(
            codes::TOO_MANY_LAYERS,
            format!("the file has {} layers with data; at most {MAX_LAYERS} can be imported", found.len()),
        ));
    }
    // Multi-layer containers always name tables `<file>_<layer>`, as the reference does.
    let single = found.len() == 1 && !matches!(ext, "gpx" | "osm" | "pbf" | "gpkg" | "gdb" | "fgdb");
    let mut plans = Vec::with_capacity(found.len());
    for (index, layer_name) in found {
        let layer = dataset
            .layer(index)
            .map_err(|e| ImportError::new(codes::UNABLE_TO_LOAD, format!("layer {index} could not be read: {e}")))?;
        let table_name = if single {
            stem.to_string()
        } else if ext == "kml" {
            sanitize_table_name(&layer_name)
        } else if sanitize_table_name(&layer_name) == stem {
            stem.to_string()
        } else {
            sanitize_table_name(&format!("{stem}_{layer_name}"))
        };
        plans.push(layer_plan(&layer, index, table_name)?);
    }
    Ok(plans)
}

fn layer_plan(layer: &gdal::vector::Layer<'_>, index: usize, table_name: String) -> Result<LayerPlan, ImportError> {
    // SAFETY: the definition handle belongs to the layer, which outlives this function's use of it.
    let defn = unsafe { layer.defn().c_defn() };
    let count = unsafe { gdal_sys::OGR_FD_GetFieldCount(defn) };
    check_width(count.max(0) as usize)?;
    let mut raw_names = Vec::new();
    let mut kinds = Vec::new();
    for i in 0..count {
        // SAFETY: `i` is below the definition's field count.
        let (name, kind) = unsafe {
            let field = gdal_sys::OGR_FD_GetFieldDefn(defn, i);
            let name = CStr::from_ptr(gdal_sys::OGR_Fld_GetNameRef(field)).to_string_lossy().into_owned();
            (name, FieldKind::of(gdal_sys::OGR_Fld_GetType(field), gdal_sys::OGR_Fld_GetSubType(field)))
        };
        raw_names.push(name);
        kinds.push(kind);
    }
    let id_field = raw_names
        .iter()
        .position(|n| n.eq_ignore_ascii_case("cartodb_id"))
        .filter(|&i| matches!(kinds[i], FieldKind::Integer | FieldKind::BigInt))
        .map(|i| i as i32);
    let names = unique_column_names(&raw_names, CARTO_COLUMNS);
    let mut columns = Vec::new();
    let mut fields = Vec::new();
    for (i, (name, kind)) in names.into_iter().zip(kinds).enumerate() {
        if Some(i as i32) == id_field {
            continue;
        }
        columns.push(TableColumn { name, pg_type: kind.pg_type() });
        fields.push((i as i32, kind));
    }
    Ok(LayerPlan { index, table_name, columns, fields, id_field })
}

/// A KML with a NetworkLink and no Placemark: its data is elsewhere.
fn only_links(path: &Path) -> bool {
    use std::io::Read;
    let mut head = Vec::new();
    if std::fs::File::open(path).and_then(|f| f.take(4 << 20).read_to_end(&mut head)).is_err() {
        return false;
    }
    let text = String::from_utf8_lossy(&head);
    text.contains("<NetworkLink") && !text.contains("<Placemark")
}

fn too_many_rows(max: i64) -> ImportError {
    ImportError::new(
        codes::TOO_MANY_ROWS,
        format!("a layer has more than {max} features, the most your account allows in one table"),
    )
}

/// The geometry as WKT, for the rejections report.
fn wkt_of(geometry: Option<&gdal::vector::Geometry>) -> Option<String> {
    geometry.and_then(|g| g.wkt().ok())
}

/// Streams one layer's features as binary COPY rows to `send` (in the GDAL child).
fn encode_layer(
    source: &Source,
    plan: &LayerPlan,
    max_rows: Option<i64>,
    send: &mut dyn FnMut(Vec<u8>) -> Result<(), ImportError>,
) -> Result<EncodeStats, ImportError> {
    let dataset = source.open()?;
    if matches!(source.ext.as_str(), "osm" | "pbf") {
        // Read alone, an OSM layer makes the driver keep the features of the other layers it meets until
        // they are read, and a real extract overflows that ("Too many features have accumulated"): declared
        // the only layer of interest, it skips the others.
        let name = dataset.layer(plan.index).map(|l| l.name()).unwrap_or_default();
        let declared =
            dataset.execute_sql(format!("SET interest_layers = {name}"), None, gdal::vector::sql::Dialect::DEFAULT);
        declared.map_err(|e| {
            ImportError::new(codes::UNABLE_TO_LOAD, format!("the OSM layer {name} could not be chosen: {e}"))
        })?;
    }
    let mut layer = dataset
        .layer(plan.index)
        .map_err(|e| ImportError::new(codes::UNABLE_TO_LOAD, format!("layer {} could not be read: {e}", plan.index)))?;
    let transform = geometry::to_wgs84(layer.spatial_ref().as_ref())?;
    let mut out = CopyBuffer::new();
    let mut stats = EncodeStats::default();
    let mut failures_seen = failures::count();
    for feature in layer.features() {
        stats.rows += 1;
        // A failure reported while GDAL fetched this feature: it read past something of it.
        let failures = failures::count();
        if failures > failures_seen {
            let message = failures::last();
            stats.reader_errors += failures - failures_seen;
            failures_seen = failures;
            stats
                .rejections
                .add(stats.rows, "", || (None, format!("GDAL could not read all of this feature: {message}")));
            stats.last_reader_error = Some(message);
        }
        if let Some(max) = max_rows.filter(|max| stats.rows > *max as u64) {
            return Err(too_many_rows(max));
        }
        out.begin_row(3 + plan.columns.len());
        // SAFETY: the feature handle lives for this iteration; field indexes come from its definition.
        let handle = unsafe { feature.c_feature() };
        // A missing id takes the row number; if that repeats an id, the key step renumbers all rows.
        match plan.id_field.filter(|&i| unsafe { gdal_sys::OGR_F_IsFieldSetAndNotNull(handle, i) } != 0) {
            Some(i) => out.i64(unsafe { gdal_sys::OGR_F_GetFieldAsInteger64(handle, i) }),
            None => out.i64(stats.rows as i64),
        }
        // An empty geometry (a KML Model, say) is no geometry, as GDAL itself reports it.
        // (A feature whose geometry GDAL could not read holds a null handle, which OGR_G_IsEmpty refuses.)
        // SAFETY: the handle is only compared with null.
        let source = feature.geometry().filter(|g| !unsafe { g.c_geometry() }.is_null() && !g.is_empty());
        let encoded = source.and_then(|g| geometry::to_geo(g, transform.as_ref())).and_then(fit_for_postgis);
        stats.non_points |= encoded.as_ref().is_some_and(|g| !matches!(g, geo_types::Geometry::Point(_)));
        match encoded.as_ref().and_then(encode_pair) {
            Some((wgs84, mercator)) => {
                stats.rows_with_geometry += 1;
                out.ewkb(&wgs84);
                out.ewkb(&mercator);
                if let Some(change) = source.and_then(geometry::change_of_shape) {
                    stats.rejections.add(stats.rows, "the_geom", || (wkt_of(source), change.into()));
                }
            }
            None => {
                if source.is_some() {
                    stats.unreadable_geometries += 1;
                    stats.rejections.add(stats.rows, "the_geom", || {
                        let why = "a geometry that cannot be placed on Earth or held by PostGIS: the feature has none";
                        (wkt_of(source), why.into())
                    });
                }
                out.null();
                out.null();
            }
        }
        for &(index, kind) in &plan.fields {
            unsafe { fields::write_field(handle, index, kind, &mut out) };
        }
        if out.len() >= CHUNK_BYTES {
            send(out.take())?;
        }
    }
    send(out.finish())?;
    let failures = failures::count();
    if failures > failures_seen {
        // After the last feature: what the driver could not read at the end of the layer.
        stats.reader_errors += failures - failures_seen;
        stats.last_reader_error = Some(failures::last());
    }
    Ok(stats)
}
