//! Turning an OGR geometry into the two geometries a table stores: curves made linear, Z and M dropped,
//! reprojected to EPSG:4326 by GDAL (which reads any CRS a file can describe), then encoded like every
//! other geometry.

use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::Geometry as OgrGeometry;
use geozero::ToGeo;

use crate::errors::{ImportError, codes};

/// The transformation from a layer's CRS to EPSG:4326; None when the layer is already in it, or has no CRS
/// at all (a shapefile without .prj is taken as EPSG:4326, as the reference does).
pub fn to_wgs84(source: Option<&SpatialRef>) -> Result<Option<CoordTransform>, ImportError> {
    let Some(source) = source else { return Ok(None) };
    let mut source = source.clone();
    source.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut identified = source.clone();
    let _ = identified.auto_identify_epsg();
    if identified.auth_name().as_deref() == Some("EPSG") && identified.auth_code().ok() == Some(4326) {
        return Ok(None);
    }
    let unknown = |e: gdal::errors::GdalError| {
        ImportError::new(
            codes::UNKNOWN_SRID,
            format!("the data's coordinate reference system cannot be converted to EPSG:4326 ({e})"),
        )
    };
    let mut wgs84 = SpatialRef::from_epsg(4326).map_err(unknown)?;
    wgs84.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    CoordTransform::new(&source, &wgs84).map(Some).map_err(unknown)
}

/// The geometry in EPSG:4326 as geo-types, or None if it cannot be read or converted.
pub fn to_geo(geometry: &OgrGeometry, transform: Option<&CoordTransform>) -> Option<geo_types::Geometry<f64>> {
    let wkb = linear_2d_wkb(geometry, transform)?;
    geozero::wkb::Wkb(wkb).to_geo().ok()
}

fn linear_2d_wkb(geometry: &OgrGeometry, transform: Option<&CoordTransform>) -> Option<Vec<u8>> {
    // SAFETY: every handle below is either borrowed from `geometry` for the duration of the call or a copy
    // owned here and destroyed before returning.
    unsafe {
        let source = geometry.c_geometry();
        if source.is_null() {
            return None;
        }
        let copy = if gdal_sys::OGR_GT_IsNonLinear(gdal_sys::OGR_G_GetGeometryType(source)) != 0 {
            gdal_sys::OGR_G_GetLinearGeometry(source, 0.0, std::ptr::null_mut())
        } else {
            gdal_sys::OGR_G_Clone(source)
        };
        if copy.is_null() {
            return None;
        }
        // Surfaces made of faces (TINs, triangles, polyhedral surfaces: what FileGDB's multipatches and 3D
        // GeoPackages hold) are their faces as a MultiPolygon: PostGIS's tables and geozero take those.
        let copy = if is_faceted_surface(gdal_sys::OGR_G_GetGeometryType(copy)) {
            gdal_sys::OGR_G_ForceToMultiPolygon(copy)
        } else {
            copy
        };
        if copy.is_null() {
            return None;
        }
        gdal_sys::OGR_G_FlattenTo2D(copy);
        let transformed = match transform {
            Some(t) => gdal_sys::OGR_G_Transform(copy, t.to_c_hct()) == gdal_sys::OGRErr::OGRERR_NONE,
            None => true,
        };
        let mut wkb = None;
        if transformed {
            let size = gdal_sys::OGR_G_WkbSize(copy).max(0) as usize;
            let mut buffer = vec![0u8; size];
            if gdal_sys::OGR_G_ExportToWkb(copy, gdal_sys::OGRwkbByteOrder::wkbNDR, buffer.as_mut_ptr())
                == gdal_sys::OGRErr::OGRERR_NONE
            {
                wkb = Some(buffer);
            }
        }
        gdal_sys::OGR_G_DestroyGeometry(copy);
        wkb
    }
}

/// A TIN, a triangle or a polyhedral surface, in 2D or 3D, measured or not.
fn is_faceted_surface(kind: gdal_sys::OGRwkbGeometryType::Type) -> bool {
    use gdal_sys::OGRwkbGeometryType as T;
    // SAFETY: a pure function of its argument.
    let flat = unsafe { gdal_sys::OGR_GT_Flatten(kind) };
    [T::wkbPolyhedralSurface, T::wkbTIN, T::wkbTriangle].contains(&flat)
}

/// How loading changes `geometry`'s shape, if it does (for the rejections report): arcs become straight
/// segments, faces a multipolygon. Dropping Z and M is no change worth a line per row.
pub fn change_of_shape(geometry: &OgrGeometry) -> Option<&'static str> {
    // SAFETY: the handle is borrowed from `geometry` for the duration of the calls.
    unsafe {
        let handle = geometry.c_geometry();
        if handle.is_null() {
            return None;
        }
        let kind = gdal_sys::OGR_G_GetGeometryType(handle);
        if is_faceted_surface(kind) {
            return Some(
                "a surface of faces (TIN, triangle or polyhedral surface): kept as a multipolygon of its faces",
            );
        }
        // The type says whether arcs may be there (asked of every feature: no walk of plain geometries); only
        // then are the parts looked at, since a CurvePolygon may hold straight rings only.
        (gdal_sys::OGR_GT_IsNonLinear(kind) != 0 && gdal_sys::OGR_G_HasCurveGeometry(handle, 1) != 0)
            .then_some("a curved geometry: its arcs were approximated by straight segments")
    }
}
