//! The warp from longitude/latitude on WGS 84 to web mercator, done as what it is: separable. A web
//! mercator column has one longitude whatever its row, and a row one latitude whatever its column, so with
//! nearest neighbour every pixel of a destination row comes from one source row, and every pixel of a
//! column from one source column. The warp is then two lookup tables and a gather: no per-pixel projection,
//! none of GDAL's warp chunks (which transform a grid of points per chunk and interpolate the rest), and
//! exact where GDAL's approximate transformer may be off by up to an eighth of a pixel.
//!
//! Only that case takes this path; every other (a datum shift, a rotated or GCP-placed source, masks,
//! another CRS) is GDAL's warp. The destination grid is GDAL's own (the warped VRT's size and
//! geotransform), so both paths make the same table.

use gdal::Dataset;

use super::window::Window;
use super::wkb::PixelType;
use crate::errors::ImportError;

/// The sphere web mercator projects on (EPSG:3857's semi-major axis).
const RADIUS: f64 = 6_378_137.0;
/// GDAL's nearest neighbour takes the source pixel under the destination pixel's centre, nudged by this so
/// that a centre on a pixel's edge falls in the pixel past it.
const EDGE: f64 = 1e-10;

/// Which source row and column each destination row and column takes its pixels from (None: outside the
/// source, left at the band's nodata value, or 0 without one).
pub struct Remap {
    rows: Vec<Option<usize>>,
    columns: Vec<Option<usize>>,
    /// The source columns read, `first..first + count`.
    first: usize,
    count: usize,
}

impl Remap {
    /// The lookups for the destination grid of `width` x `height` pixels with geotransform `to` (in EPSG:3857,
    /// north up), if `source` lies in plain longitude/latitude on WGS 84, north up, with no masks other
    /// than nodata; None otherwise (GDAL's warp then does it).
    pub fn new(source: &Dataset, to: [f64; 6], width: usize, height: usize) -> Option<Remap> {
        let from = source.geo_transform().ok()?;
        let srs = source.spatial_ref().ok()?;
        let plain = srs.auth_code().ok() == Some(4326) && longitude_first(&srs);
        let north_up = from[2] == 0.0 && from[4] == 0.0 && from[1] > 0.0 && from[5] < 0.0;
        let within = from[0] >= -180.0 && from[0] + from[1] * source.raster_size().0 as f64 <= 180.0;
        if !plain || !north_up || !within || to[2] != 0.0 || to[4] != 0.0 || !only_nodata_masks(source) {
            return None;
        }
        let (source_width, source_height) = source.raster_size();
        let lookup = |count: usize, pixel: &dyn Fn(f64) -> f64, len: usize| -> Vec<Option<usize>> {
            (0..count)
                .map(|i| {
                    let at = (pixel(i as f64 + 0.5) + EDGE).floor();
                    (at >= 0.0 && at < len as f64).then_some(at as usize)
                })
                .collect()
        };
        let column = |i: f64| {
            let longitude = (to[0] + i * to[1]) / RADIUS;
            (longitude.to_degrees() - from[0]) / from[1]
        };
        let row = |j: f64| {
            let latitude = ((to[3] + j * to[5]) / RADIUS).sinh().atan();
            (latitude.to_degrees() - from[3]) / from[5]
        };
        let columns = lookup(width, &column, source_width);
        let rows = lookup(height, &row, source_height);
        let first = columns.iter().flatten().min().copied().unwrap_or(0);
        let count = columns.iter().flatten().max().map_or(0, |last| last + 1 - first);
        Some(Remap { rows, columns, first, count })
    }

    /// Band `index`'s pixels of destination rows `top..top + rows` into `buf`, in the band's own type:
    /// each source row is read once per run of destination rows that take it, one row at a time.
    #[allow(clippy::too_many_arguments)]
    pub fn read_rows(
        &self,
        source: &Dataset,
        index: usize,
        pixel_type: PixelType,
        fill: &[u8],
        top: usize,
        rows: usize,
        buf: &mut Vec<u8>,
        line: &mut Vec<u8>,
    ) -> Result<(), ImportError> {
        let size = pixel_type.size();
        let width = self.columns.len();
        buf.resize(rows * width * size, 0);
        line.resize(self.count * size, 0);
        let mut held = None;
        for r in 0..rows {
            let out = &mut buf[r * width * size..(r + 1) * width * size];
            let Some(source_row) = self.rows[top + r] else {
                out.chunks_exact_mut(size).for_each(|p| p.copy_from_slice(fill));
                continue;
            };
            if held == Some(source_row) {
                let (before, this) = buf.split_at_mut(r * width * size);
                this[..width * size].copy_from_slice(&before[(r - 1) * width * size..]);
                continue;
            }
            read_source_row(source, index, source_row, self.first, self.count, line)?;
            gather(out, line, &self.columns, self.first, size, fill);
            held = Some(source_row);
        }
        Ok(())
    }
}

/// Takes each destination pixel from its source column of `line` (which starts at column `first`).
fn gather(out: &mut [u8], line: &[u8], columns: &[Option<usize>], first: usize, size: usize, fill: &[u8]) {
    for (pixel, column) in out.chunks_exact_mut(size).zip(columns) {
        match column {
            Some(c) => pixel.copy_from_slice(&line[(c - first) * size..(c - first + 1) * size]),
            None => pixel.copy_from_slice(fill),
        }
    }
}

/// True when the geotransform's x is the longitude (EPSG:4326 names latitude first; GDAL maps a GeoTIFF's
/// x to its second axis).
fn longitude_first(srs: &gdal::spatial_ref::SpatialRef) -> bool {
    let mut count = 0;
    // SAFETY: the SRS handle is alive; GDAL returns `count` integers it owns, valid while the SRS is.
    let mapping = unsafe {
        let at = gdal_sys::OSRGetDataAxisToSRSAxisMapping(srs.to_c_hsrs(), &mut count);
        if at.is_null() { &[][..] } else { std::slice::from_raw_parts(at, count as usize) }
    };
    mapping == [2, 1]
}

/// True when every band's mask is all-valid or its nodata value (no alpha, no mask band, no per-dataset
/// mask), which is all the gather honours.
fn only_nodata_masks(source: &Dataset) -> bool {
    (1..=source.raster_count()).all(|i| {
        let flags = source.rasterband(i).and_then(|band| band.mask_flags());
        flags.is_ok_and(|f| !f.is_per_dataset() && !f.is_alpha() && (f.is_all_valid() || f.is_nodata()))
    })
}

/// Source row `row`, columns `first..first + count`, of band `index`, in its own type.
fn read_source_row(
    source: &Dataset,
    index: usize,
    row: usize,
    first: usize,
    count: usize,
    line: &mut [u8],
) -> Result<(), ImportError> {
    let window = Window { left: first, top: row, width: count, height: 1 };
    super::window::read(source, index, &window, line, || format!("its row {row}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gdal::DriverManager;
    use gdal::raster::Buffer;
    use gdal::spatial_ref::SpatialRef;

    /// A raster of `width` x `height` Int16 pixels in EPSG:4326 over `ullr`, each pixel a value of its own
    /// (some of them nodata), in memory.
    fn source(width: usize, height: usize, ullr: [f64; 4]) -> Dataset {
        let driver = DriverManager::get_driver_by_name("MEM").unwrap();
        let mut dataset = driver.create_with_band_type::<i16, _>("", width, height, 1).unwrap();
        let [west, north, east, south] = ullr;
        let scale = ((east - west) / width as f64, (south - north) / height as f64);
        dataset.set_geo_transform(&[west, scale.0, 0.0, north, 0.0, scale.1]).unwrap();
        let mut srs = SpatialRef::from_epsg(4326).unwrap();
        srs.set_axis_mapping_strategy(gdal::spatial_ref::AxisMappingStrategy::TraditionalGisOrder);
        dataset.set_spatial_ref(&srs).unwrap();
        let mut band = dataset.rasterband(1).unwrap();
        band.set_no_data_value(Some(-9999.0)).unwrap();
        let pixels = (0..width * height).map(|i| if i % 97 == 0 { -9999 } else { (i * 7919 % 30011) as i16 }).collect();
        band.write((0, 0), (width, height), &mut Buffer::new((width, height), pixels)).unwrap();
        dataset
    }

    /// GDAL's warp of `source` to web mercator with its exact transformer (no approximation).
    fn gdal_warp(source: &Dataset) -> Dataset {
        let target = std::ffi::CString::new(SpatialRef::from_epsg(3857).unwrap().to_wkt().unwrap()).unwrap();
        // SAFETY: an open dataset's handle and a NUL-terminated WKT; the VRT returned is ours to close.
        unsafe {
            let warped = gdal_sys::GDALAutoCreateWarpedVRT(
                source.c_dataset(),
                std::ptr::null(),
                target.as_ptr(),
                gdal_sys::GDALResampleAlg::GRA_NearestNeighbour,
                0.0,
                std::ptr::null(),
            );
            assert!(!warped.is_null());
            Dataset::from_c_dataset(warped)
        }
    }

    #[test]
    fn the_lookups_make_gdals_exact_warp_pixel_for_pixel() {
        for ullr in [[-10.3, 62.1, 24.9, 30.2], [170.0, -60.0, 179.5, -84.0], [-1.0, 1.0, 1.0, -1.0]] {
            let source = source(701, 493, ullr);
            let warped = gdal_warp(&source);
            let (width, height) = warped.raster_size();
            let remap = Remap::new(&source, warped.geo_transform().unwrap(), width, height).expect("separable");
            let fill = (-9999i16).to_le_bytes();
            let (mut ours, mut line) = (Vec::new(), Vec::new());
            remap.read_rows(&source, 1, PixelType::I16, &fill, 0, height, &mut ours, &mut line).unwrap();
            let theirs: Vec<i16> = warped.rasterband(1).unwrap().read_band_as::<i16>().unwrap().data().to_vec();
            let ours: Vec<i16> = ours.chunks_exact(2).map(|p| i16::from_le_bytes([p[0], p[1]])).collect();
            let differ = ours.iter().zip(&theirs).filter(|(a, b)| a != b).count();
            assert_eq!(ours.len(), theirs.len());
            // Floating point may put a centre on the other side of an edge now and then; never more.
            assert!(differ * 10_000 <= ours.len(), "{ullr:?}: {differ} of {} pixels differ", ours.len());
            assert!(theirs.iter().filter(|v| **v != -9999).count() * 10 > theirs.len() * 8, "{ullr:?}: mostly data");
        }
    }

    #[test]
    fn other_sources_are_left_to_gdal() {
        let mut rotated = source(50, 50, [0.0, 10.0, 10.0, 0.0]);
        rotated.set_geo_transform(&[0.0, 0.2, 0.01, 10.0, 0.0, -0.2]).unwrap();
        assert!(Remap::new(&rotated, [0.0, 1.0, 0.0, 0.0, 0.0, -1.0], 10, 10).is_none(), "rotated");
        let mut utm = source(50, 50, [0.0, 10.0, 10.0, 0.0]);
        utm.set_spatial_ref(&SpatialRef::from_epsg(32633).unwrap()).unwrap();
        assert!(Remap::new(&utm, [0.0, 1.0, 0.0, 0.0, 0.0, -1.0], 10, 10).is_none(), "UTM");
        let nad27 = source(50, 50, [0.0, 10.0, 10.0, 0.0]);
        assert!(Remap::new(&nad27, [0.0, 1.0, 0.0, 0.0, 0.0, -1.0], 10, 10).is_some(), "WGS 84");
        let mut nad27 = nad27;
        nad27.set_spatial_ref(&SpatialRef::from_epsg(4267).unwrap()).unwrap();
        assert!(Remap::new(&nad27, [0.0, 1.0, 0.0, 0.0, 0.0, -1.0], 10, 10).is_none(), "a datum shift");
    }
}
