//! The GDAL reader: `geoimport-gdal-read gdal-read <file>`, started by the server for every read with GDAL
//! (see `geoimport::formats::ogr::process`), the request on stdin. A binary of its own so that the server,
//! which never runs GDAL itself, does not map GDAL's hundred libraries either (25 MB of its resident memory).

fn main() {
    std::process::exit(geoimport::formats::ogr::child::main());
}
