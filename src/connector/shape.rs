//! The shape of a table imported from a database, decided from its columns alone (a database tells us
//! the types, so nothing needs guessing from values): the final column names, where `the_geom` comes from,
//! and whether the source's own `cartodb_id` is kept. The rules are the files' rules: a spatial column
//! first, else a column named like a geometry column, else latitude/longitude columns (only with type
//! guessing, as for files).

use std::collections::HashSet;

use crate::load::guess::{GEOMETRY_COLUMN_NAMES, ValueKind, pick_lat_lon};
use crate::load::names::{CARTO_COLUMNS, claim_unique, unique_column_names, with_suffix};

/// What kind of values a source column holds, as far as the shape is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A geometry (MySQL spatial types, PostGIS geometry or geography).
    Spatial,
    Integer,
    /// Any other number (lat/lon candidates).
    Number,
    Text,
    Bytes,
    Other,
}

#[derive(Debug, Clone)]
pub struct SourceColumn {
    pub name: String,
    pub role: Role,
}

/// Where `the_geom` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeometryFrom {
    None,
    /// A spatial column, consumed into `the_geom`.
    Spatial(usize),
    /// A text or binary column named like a geometry column (WKT, GeoJSON, WKB...), consumed into
    /// `the_geom`; values that are not geometries are kept in the companion column.
    Named(usize),
    /// Numeric latitude and longitude columns, which stay in the table too.
    LatLon {
        lat: usize,
        lon: usize,
    },
}

#[derive(Debug, Clone)]
pub struct Shape {
    /// The final name of every source column: sanitized, unique, never one of the three we add.
    pub names: Vec<String>,
    pub geometry: GeometryFrom,
    /// An integer source column named `cartodb_id`, kept as the key.
    pub id: Option<usize>,
    /// For a named geometry column: the text column that keeps values that are not geometries.
    pub companion: Option<String>,
}

impl Shape {
    /// Whether source column `i` becomes a data column of the table (the geometry source and the key
    /// go into our own columns instead).
    pub fn is_data(&self, i: usize) -> bool {
        Some(i) != self.id && !matches!(self.geometry, GeometryFrom::Spatial(g) | GeometryFrom::Named(g) if g == i)
    }
}

pub fn shape(columns: &[SourceColumn], type_guessing: bool) -> Shape {
    let raw: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    let plain = unique_column_names(&raw, &[]);
    let id = plain.iter().position(|n| n == "cartodb_id").filter(|&i| columns[i].role == Role::Integer);
    let spatial = columns.iter().position(|c| c.role == Role::Spatial).map(GeometryFrom::Spatial);
    let named = || {
        GEOMETRY_COLUMN_NAMES
            .iter()
            .find_map(|want| {
                plain.iter().position(|n| n == want).filter(|&i| matches!(columns[i].role, Role::Text | Role::Bytes))
            })
            .map(GeometryFrom::Named)
    };
    let lat_lon = || {
        if !type_guessing {
            return None;
        }
        let kinds: Vec<ValueKind> = columns
            .iter()
            .map(|c| if matches!(c.role, Role::Number | Role::Integer) { ValueKind::Double } else { ValueKind::Text })
            .collect();
        pick_lat_lon(&plain, &kinds).map(|(lat, lon)| GeometryFrom::LatLon { lat, lon })
    };
    let geometry = spatial.or_else(named).or_else(lat_lon).unwrap_or(GeometryFrom::None);
    let names = unique_column_names(&raw, CARTO_COLUMNS);
    let companion = match geometry {
        GeometryFrom::Named(i) => {
            let mut used: HashSet<String> = names.iter().cloned().collect();
            used.extend(CARTO_COLUMNS.iter().map(|s| s.to_string()));
            Some(claim_unique(&with_suffix(&plain[i], "_invalid"), &mut used))
        }
        _ => None,
    };
    Shape { names, geometry, id, companion }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(spec: &[(&str, Role)]) -> Vec<SourceColumn> {
        spec.iter().map(|(n, r)| SourceColumn { name: n.to_string(), role: *r }).collect()
    }

    #[test]
    fn a_spatial_column_wins_over_names_and_coordinates() {
        let s = shape(
            &cols(&[("Lat", Role::Number), ("lon", Role::Number), ("wkt", Role::Text), ("location", Role::Spatial)]),
            true,
        );
        assert_eq!(s.geometry, GeometryFrom::Spatial(3));
        assert!(s.is_data(0) && s.is_data(2) && !s.is_data(3));
        assert_eq!(s.names[0], "lat");
    }

    #[test]
    fn geometry_named_text_then_lat_lon_without_guessing_only_names() {
        let s = shape(&cols(&[("id", Role::Integer), ("the_geom", Role::Text)]), true);
        assert_eq!(s.geometry, GeometryFrom::Named(1));
        assert_eq!(s.companion.as_deref(), Some("the_geom_invalid"));
        let s = shape(&cols(&[("latitude", Role::Number), ("longitude", Role::Integer)]), true);
        assert_eq!(s.geometry, GeometryFrom::LatLon { lat: 0, lon: 1 });
        let s = shape(&cols(&[("latitude", Role::Number), ("longitude", Role::Number)]), false);
        assert_eq!(s.geometry, GeometryFrom::None);
        let s = shape(&cols(&[("latitude", Role::Text), ("longitude", Role::Number)]), true);
        assert_eq!(s.geometry, GeometryFrom::None);
    }

    #[test]
    fn an_integer_cartodb_id_is_the_key_and_our_names_are_never_reused() {
        let s = shape(
            &cols(&[("cartodb_id", Role::Integer), ("the_geom_webmercator", Role::Text), ("x", Role::Other)]),
            true,
        );
        assert_eq!(s.id, Some(0));
        assert!(!s.is_data(0));
        assert_eq!(s.names[1], "the_geom_webmercator_1");
        let s = shape(&cols(&[("cartodb_id", Role::Text)]), true);
        assert_eq!(s.id, None);
        assert_eq!(s.names[0], "cartodb_id_1");
    }
}
