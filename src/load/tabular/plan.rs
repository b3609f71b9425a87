//! From what the scan saw to the table to create: column names and types, where the geometry comes from,
//! whether the source's own `cartodb_id` is kept, and which columns need a `_invalid` companion.

use std::collections::HashSet;

use super::scan::Scan;
use crate::load::guess::{self, GEOMETRY_COLUMN_NAMES, ValueKind};
use crate::load::names::{CARTO_COLUMNS, claim_unique, unique_column_names, with_suffix};
use crate::load::table::{PgType, StagingTable, TableColumn};

/// Where `the_geom` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeometrySource {
    None,
    /// Numeric latitude and longitude columns (which stay in the table too).
    LatLon {
        lat: usize,
        lon: usize,
    },
    /// A text column of geometries, consumed into `the_geom`.
    Column(usize),
    /// Each row carries its own geometry (GeoJSON features).
    Feature,
}

/// One step of writing a row: which source field goes to which staging column(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    /// The field as `kind`; with `overflow`, the next column holds the raw text of values that do not fit.
    Value { source: usize, kind: ValueKind, overflow: bool },
    /// The raw text of geometries that could not be read.
    GeometryOverflow { source: usize },
}

/// How every row of a source is loaded.
#[derive(Debug, Clone)]
pub struct TablePlan {
    pub columns: Vec<TableColumn>,
    pub emits: Vec<Emit>,
    pub geometry: GeometrySource,
    /// A source column of integers that becomes `cartodb_id`.
    pub id_column: Option<usize>,
    /// Columns whose misfits are kept aside, with their counts (for the warnings).
    pub invalid_values: Vec<(String, u64)>,
    /// Positions a geometry read from text may have (what the scan allowed).
    pub max_geometry_positions: u64,
}

impl TablePlan {
    /// The layer a load of this plan made, with the warnings of both.
    pub fn layer(&self, loaded: crate::load::Loaded, staging: StagingTable, name: String) -> crate::load::LoadedLayer {
        let mut warnings = loaded.warnings();
        self.add_warnings(&mut warnings);
        let rejections = loaded.rejections();
        crate::load::LoadedLayer {
            staging,
            proposed_name: name,
            rows: loaded.rows as i64,
            warnings,
            rejections,
            overviews: None,
        }
    }

    /// Reports the columns whose misfits were kept aside: `{"invalid_values": {"<column>": <count>}}`.
    fn add_warnings(&self, warnings: &mut serde_json::Map<String, serde_json::Value>) {
        if !self.invalid_values.is_empty() {
            let counts: serde_json::Map<_, _> =
                self.invalid_values.iter().map(|(c, n)| (c.clone(), serde_json::Value::from(*n))).collect();
            warnings.insert("invalid_values".into(), counts.into());
        }
    }
}

/// Type-guessing switches of the request.
#[derive(Debug, Clone, Copy)]
pub struct GuessOptions {
    pub type_guessing: bool,
    pub quoted_fields_guessing: bool,
}

/// The plan for a scanned source. `feature_geometry`: the rows bring their own geometry, which then wins
/// over any geometry-like column.
pub fn plan(scan: &Scan, quoted_columns: &[bool], options: GuessOptions, feature_geometry: bool) -> TablePlan {
    let plain: Vec<String> = unique_column_names(&scan.headers, &[]);
    let mut guesses: Vec<guess::ColumnGuess> = scan.stats.iter().map(|s| s.guess(options.type_guessing)).collect();
    if !options.quoted_fields_guessing {
        for (g, quoted) in guesses.iter_mut().zip(quoted_columns) {
            if *quoted {
                *g = guess::ColumnGuess { kind: ValueKind::Text, misfits: 0 };
            }
        }
    }
    let kinds: Vec<ValueKind> = guesses.iter().map(|g| g.kind).collect();

    // The file's cartodb_id is kept when every row has an integer there (uniqueness is checked by the
    // primary key afterwards). It is recognised even without type guessing: re-importing an export must
    // keep its ids.
    let id_column = plain.iter().position(|n| n == "cartodb_id").filter(|&i| {
        let s = &scan.stats[i];
        let whole = s.guess(true);
        matches!(whole.kind, ValueKind::Integer | ValueKind::BigInt) && whole.misfits == 0 && s.non_null == scan.rows
    });

    // A real geometry column beats lat/lon columns (the reference's users asked for that precedence).
    let geometry =
        if feature_geometry { GeometrySource::Feature } else { column_geometry(&plain, scan, &kinds, options) };

    // Final names: our three columns are taken; a source column called the_geom that is not the geometry
    // source becomes the_geom_1, and so on.
    let final_names = unique_column_names(&scan.headers, CARTO_COLUMNS);
    let mut used: HashSet<String> = final_names.iter().cloned().collect();
    used.extend(CARTO_COLUMNS.iter().map(|s| s.to_string()));

    let mut columns = Vec::new();
    let mut emits = Vec::new();
    let mut invalid_values = Vec::new();
    for (i, name) in final_names.iter().enumerate() {
        if Some(i) == id_column {
            continue;
        }
        if geometry == GeometrySource::Column(i) {
            let misfits = scan.stats[i].non_null - scan.stats[i].geometries;
            if misfits > 0 {
                let overflow = claim_unique(&with_suffix(&plain[i], "_invalid"), &mut used);
                invalid_values.push((plain[i].clone(), misfits));
                columns.push(TableColumn { name: overflow, pg_type: PgType::Text });
                emits.push(Emit::GeometryOverflow { source: i });
            }
            continue;
        }
        let g = guesses[i];
        columns.push(TableColumn { name: name.clone(), pg_type: g.kind.pg_type() });
        let overflow = g.misfits > 0;
        emits.push(Emit::Value { source: i, kind: g.kind, overflow });
        if overflow {
            let overflow_name = claim_unique(&with_suffix(name, "_invalid"), &mut used);
            invalid_values.push((name.clone(), g.misfits));
            columns.push(TableColumn { name: overflow_name, pg_type: PgType::Text });
        }
    }
    TablePlan {
        columns,
        emits,
        geometry,
        id_column,
        invalid_values,
        max_geometry_positions: scan.max_geometry_positions,
    }
}

/// A column of geometries, else numeric latitude/longitude columns (only with type guessing, as in the
/// reference), else none.
fn column_geometry(plain: &[String], scan: &Scan, kinds: &[ValueKind], options: GuessOptions) -> GeometrySource {
    GEOMETRY_COLUMN_NAMES
        .iter()
        .find_map(|want| plain.iter().position(|n| n == want).filter(|&i| scan.stats[i].is_geometry()))
        .map(GeometrySource::Column)
        .or_else(|| {
            if !options.type_guessing {
                return None;
            }
            guess::pick_lat_lon(plain, kinds).map(|(lat, lon)| GeometrySource::LatLon { lat, lon })
        })
        .unwrap_or(GeometrySource::None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::guess::ColumnStats;

    fn scan_of(headers: &[&str], rows: &[&[&str]]) -> Scan {
        let mut stats = vec![ColumnStats::default(); headers.len()];
        for row in rows {
            for (i, v) in row.iter().enumerate() {
                stats[i].observe(v);
                if GEOMETRY_COLUMN_NAMES.contains(&headers[i].to_lowercase().as_str()) {
                    stats[i].observe_geometry(v, 1000);
                }
            }
        }
        let headers = headers.iter().map(|s| s.to_string()).collect();
        Scan { headers, stats, rows: rows.len() as u64, short_rows: 0, max_geometry_positions: 1000 }
    }

    const GUESS: GuessOptions = GuessOptions { type_guessing: true, quoted_fields_guessing: true };

    #[test]
    fn lat_lon_columns_make_points_and_stay() {
        let s = scan_of(&["name", "lat", "lon"], &[&["a", "40.1", "-3.2"], &["b", "41", "-3"]]);
        let p = plan(&s, &[], GUESS, false);
        assert_eq!(p.geometry, GeometrySource::LatLon { lat: 1, lon: 2 });
        let names: Vec<_> = p.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["name", "lat", "lon"]);
        assert_eq!(p.columns[1].pg_type, PgType::Double);
    }

    #[test]
    fn a_geometry_column_wins_over_lat_lon_and_is_consumed() {
        let s = scan_of(
            &["the_geom", "lat", "lon"],
            &[&["POLYGON((0 0,1 0,1 1,0 0))", "1", "2"], &["POINT(1 2)", "1", "2"]],
        );
        let p = plan(&s, &[], GUESS, false);
        assert_eq!(p.geometry, GeometrySource::Column(0));
        let names: Vec<_> = p.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["lat", "lon"]);
    }

    #[test]
    fn a_the_geom_column_without_geometries_is_renamed() {
        let s = scan_of(&["the_geom", "v"], &[&["12.5", "1"], &["13.5", "2"]]);
        let p = plan(&s, &[], GUESS, false);
        assert_eq!(p.geometry, GeometrySource::None);
        assert_eq!(p.columns[0].name, "the_geom_1");
    }

    #[test]
    fn integer_cartodb_id_is_kept_and_misfits_get_a_companion() {
        let s = scan_of(
            &["cartodb_id", "day"],
            &[&["5", "2024-01-01"], &["7", "2024-01-02"], &["9", "2024-01-03"], &["10", "soon"]],
        );
        let p = plan(&s, &[], GUESS, false);
        assert_eq!(p.id_column, Some(0));
        let names: Vec<_> = p.columns.iter().map(|c| (c.name.as_str(), c.pg_type.clone())).collect();
        assert_eq!(names, [("day", PgType::Date), ("day_invalid", PgType::Text)]);
        assert_eq!(p.invalid_values, [("day".to_string(), 1)]);
    }

    #[test]
    fn quoted_columns_stay_text_when_asked() {
        let s = scan_of(&["a", "b"], &[&["1", "2"], &["3", "4"]]);
        let p = plan(&s, &[true, false], GuessOptions { type_guessing: true, quoted_fields_guessing: false }, false);
        assert_eq!(p.columns[0].pg_type, PgType::Text);
        assert_eq!(p.columns[1].pg_type, PgType::Integer);
    }

    #[test]
    fn without_type_guessing_everything_is_text_and_no_points_are_made() {
        let s = scan_of(&["lat", "lon"], &[&["1", "2"]]);
        let p = plan(&s, &[], GuessOptions { type_guessing: false, quoted_fields_guessing: true }, false);
        assert_eq!(p.geometry, GeometrySource::None);
        assert!(p.columns.iter().all(|c| c.pg_type == PgType::Text));
    }
}
