//! A window of one band read in the band's own pixel type: the one GDAL call both warps make (GDAL's warp
//! reads strips of the warped dataset, the lookups read rows of the source).

use std::ffi::CStr;

use gdal::Dataset;

use crate::errors::{ImportError, codes};

/// Columns `left..left + width` of rows `top..top + height`.
pub struct Window {
    pub left: usize,
    pub top: usize,
    pub width: usize,
    pub height: usize,
}

/// Reads `window` of band `index` into `buf`, which holds exactly its pixels in the band's own type. A
/// failure says the file is damaged, naming what was read (`what`, asked for only then).
pub fn read(
    dataset: &Dataset,
    index: usize,
    window: &Window,
    buf: &mut [u8],
    what: impl FnOnce() -> String,
) -> Result<(), ImportError> {
    let band = dataset.rasterband(index).map_err(|e| unreadable(&e.to_string()))?;
    // SAFETY: `buf` holds exactly `width` x `height` pixels of the band's own type, which GDAL writes.
    let status = unsafe {
        let band = band.c_rasterband();
        gdal_sys::GDALRasterIO(
            band,
            gdal_sys::GDALRWFlag::GF_Read,
            window.left as i32,
            window.top as i32,
            window.width as i32,
            window.height as i32,
            buf.as_mut_ptr().cast(),
            window.width as i32,
            window.height as i32,
            gdal_sys::GDALGetRasterDataType(band),
            0,
            0,
        )
    };
    if status != gdal_sys::CPLErr::CE_None {
        // SAFETY: GDAL's last error message is a NUL-terminated string it owns.
        let why = unsafe { CStr::from_ptr(gdal_sys::CPLGetLastErrorMsg()) }.to_string_lossy().into_owned();
        return Err(unreadable(&format!(
            "reading {} failed, the file is probably damaged or truncated: {why}",
            what()
        )));
    }
    Ok(())
}

pub fn unreadable(why: &str) -> ImportError {
    ImportError::new(codes::UNABLE_TO_LOAD, format!("the raster could not be read: {why}"))
}
