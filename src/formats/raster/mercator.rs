//! Web mercator for the reader child: the source warped block by block through a warped VRT (nothing is
//! written to disk; GDAL computes each block when it is read), with the source's coordinate system taken
//! from the file, its control points, or a `.prj` beside it.
//!
//! A raster across the antimeridian would be torn in two by EPSG:3857's seam at 180°, and GDAL would make
//! it a raster of the whole world's width. It is warped instead to the same mercator centred on 180° (no
//! seam there) and shifted back by half the world, so that it lies past 20037508 m east, where PostGIS and
//! web maps draw it on the other side of the seam.

use std::ffi::{CStr, CString};
use std::path::Path;

use gdal::Dataset;
use gdal::spatial_ref::SpatialRef;

use super::shape::WEB_MERCATOR;
use crate::errors::{ImportError, codes};

/// Half the world's width in web mercator: how far the mercator centred on 180° lies from EPSG:3857.
const HALF_WORLD: f64 = std::f64::consts::PI * 6_378_137.0;
/// The spherical mercator of EPSG:3857, centred on the antimeridian.
const MERCATOR_180: &str = "+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=180 +x_0=0 +y_0=0 +k=1 +units=m \
                            +nadgrids=@null +no_defs";

/// The source in web mercator: a warped VRT (None when the source already is web mercator, north up), and
/// what to add to its x coordinates.
pub struct Warped {
    pub dataset: Option<Dataset>,
    pub shift_x: f64,
}

/// The source warped to web mercator (nearest neighbour, as gdalwarp's default), or None when it is in web
/// mercator already, north up.
pub fn to_web_mercator(source: &Dataset, path: &Path) -> Result<Warped, ImportError> {
    let (srs, own) = match source.spatial_ref() {
        Ok(srs) => (srs, true),
        Err(_) if !source.gcps().is_empty() => {
            let srs = source.gcp_spatial_ref().ok_or_else(|| no_crs("its control points have no coordinate system"))?;
            (srs, true)
        }
        Err(_) => (sibling_prj(path).ok_or_else(|| no_crs("it has no coordinate reference system"))?, false),
    };
    let north_up = source.geo_transform().is_ok_and(|gt| gt[2] == 0.0 && gt[4] == 0.0 && gt[5] < 0.0);
    if north_up && srs.auth_code().ok() == Some(WEB_MERCATOR) {
        return Ok(Warped { dataset: None, shift_x: 0.0 });
    }
    if source.geo_transform().is_err() && source.gcps().is_empty() {
        return Err(no_crs("it is not georeferenced (no geotransform and no control points)"));
    }
    // A coordinate system found beside the file (not in it) is handed to the warp as the source's.
    let given = match own {
        true => None,
        false => Some(
            srs.to_wkt()
                .ok()
                .and_then(|w| CString::new(w).ok())
                .ok_or_else(|| no_crs("its .prj names no usable coordinate system"))?,
        ),
    };
    let web_mercator = SpatialRef::from_epsg(WEB_MERCATOR as u32);
    let plain = warp(source, given.as_deref(), web_mercator)?;
    // Torn at a seam, a raster spans the world's width (in few, huge pixels): across the antimeridian, the
    // warp centred on 180° is the narrower one by far.
    let centred = warp(source, given.as_deref(), SpatialRef::from_proj4(MERCATOR_180)).ok();
    let span = |d: &Dataset| d.geo_transform().map_or(f64::INFINITY, |gt| d.raster_size().0 as f64 * gt[1].abs());
    Ok(match centred {
        Some(c) if span(&c) * 2.0 < span(&plain) => Warped { dataset: Some(c), shift_x: HALF_WORLD },
        _ => Warped { dataset: Some(plain), shift_x: 0.0 },
    })
}

/// `source` warped to `target` (nearest neighbour, as gdalwarp's default, and its error threshold).
fn warp(
    source: &Dataset,
    given: Option<&CStr>,
    target: gdal::errors::Result<SpatialRef>,
) -> Result<Dataset, ImportError> {
    let target = target.and_then(|s| s.to_wkt()).map_err(|e| ImportError::unknown(format!("web mercator: {e}")))?;
    let target = CString::new(target).map_err(|e| ImportError::unknown(e.to_string()))?;
    // SAFETY: an open dataset's handle and NUL-terminated WKTs; GDAL takes no ownership of them, and the
    // VRT it returns is ours to close (Dataset closes it on drop).
    let warped = unsafe {
        gdal_sys::GDALAutoCreateWarpedVRT(
            source.c_dataset(),
            given.map_or(std::ptr::null(), CStr::as_ptr),
            target.as_ptr(),
            gdal_sys::GDALResampleAlg::GRA_NearestNeighbour,
            0.125,
            std::ptr::null(),
        )
    };
    if warped.is_null() {
        // SAFETY: GDAL's last error message is a NUL-terminated string it owns.
        let why = unsafe { CStr::from_ptr(gdal_sys::CPLGetLastErrorMsg()) }.to_string_lossy().into_owned();
        return Err(no_crs(&format!("it cannot be reprojected to web mercator (EPSG:3857): {why}")));
    }
    // SAFETY: a dataset handle GDAL just made for us.
    Ok(unsafe { Dataset::from_c_dataset(warped) })
}

/// The coordinate system of a `.prj` beside the file (a world-file image or an ASCII grid often has one
/// that its driver does not read), in ESRI's or OGC's WKT.
fn sibling_prj(path: &Path) -> Option<SpatialRef> {
    let text = ["prj", "PRJ"].iter().find_map(|ext| {
        let prj = path.with_extension(ext);
        let file = std::fs::File::open(prj).ok()?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(file, 64 << 10), &mut text).ok()?;
        Some(text)
    })?;
    let text = text.trim();
    let srs = SpatialRef::from_esri(text).or_else(|_| SpatialRef::from_wkt(text)).ok()?;
    srs.to_wkt().is_ok().then_some(srs)
}

pub fn no_crs(why: &str) -> ImportError {
    ImportError::new(
        codes::UNKNOWN_SRID,
        format!(
            "the raster cannot be placed on the map: {why}. Add its coordinate system (a .prj, world file or GeoTIFF keys)"
        ),
    )
}
