//! Test harness: every test gets its own PostgreSQL database (dropped when the test ends), its own data
//! directory, and a real server on a free port, talked to over HTTP.
//!
//! The admin connection comes from TEST_DATABASE_URL (default: the local cluster as `postgres`).

pub mod app;
pub mod archive;
pub mod attacks;
pub mod child_server;
pub mod db;
pub mod files;
pub mod fixture;
pub mod logs;
pub mod mysql;
pub mod nodes;
pub mod pg_proxy;
pub mod private_mariadb;
pub mod process;
pub mod python;
pub mod raw_http;
pub mod s3;
pub mod settings;
pub mod source_pg;
pub mod switch;
pub mod tus;

pub use app::*;
pub use archive::*;
pub use db::*;
pub use files::*;
pub use process::*;
pub use settings::*;

/// A reqwest client (with the TLS provider reqwest needs installed first).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// The XYZ web map tile of zoom `z` holding longitude/latitude `at`.
pub fn tile_of(z: u32, at: (f64, f64)) -> (u32, u32) {
    let n = f64::from(1u32 << z);
    let x = ((at.0 + 180.0) / 360.0 * n).floor();
    let lat = at.1.to_radians();
    let y = ((1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / std::f64::consts::PI) / 2.0 * n).floor();
    (x as u32, y as u32)
}

/// A PNG's width, height and colour type (2 RGB, 6 RGBA), from its header.
pub fn png_header(bytes: &[u8]) -> (u32, u32, u8) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let number = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (number(16), number(20), bytes[25])
}

/// The share of a PNG's pixels that are not transparent (an RGB PNG has none).
pub fn png_opaque_share(bytes: &[u8]) -> f64 {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let pixels = &pixels[..info.buffer_size()];
    match info.color_type {
        png::ColorType::Rgba => pixels.chunks(4).filter(|p| p[3] > 0).count() as f64 / (pixels.len() / 4) as f64,
        _ => 1.0,
    }
}
