//! Embeds the web page (web/dist, built by `scripts/build-web` with npm) in the binary: writes
//! `$OUT_DIR/web_assets.rs`, a list of (path, content type, bytes) with one `include_bytes!` per file, so
//! the server needs no Node.js and no files at run time. The bundle is not committed (it is 1.8 MB of
//! generated JavaScript that would drift from its sources), so a checkout without it fails here, saying
//! how to build it, rather than compiling a server without its page.

use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dist = root.join("web/dist");
    println!("cargo:rerun-if-changed=web/dist");
    if !dist.join("index.html").is_file() {
        panic!(
            "\n\nweb/dist/index.html is missing: the web page is built with npm before the Rust build.\n\
             Run `scripts/build-web` (Node.js 20 and npm; it runs `npm ci` from web/package-lock.json, then\n\
             `npm run build`). scripts/run, scripts/test and .ci/run do it themselves.\n\n"
        );
    }
    let mut files = Vec::new();
    walk(&dist, &mut files);
    files.sort();
    let mut out = String::from(
        "/// The files of web/dist: path below it, content type, bytes.\npub static ASSETS: &[(&str, &str, &[u8])] = &[\n",
    );
    for file in &files {
        let rel = file.strip_prefix(&dist).expect("under dist").to_string_lossy().replace('\\', "/");
        out.push_str(&format!(
            "    ({rel:?}, {:?}, include_bytes!({:?})),\n",
            content_type(file),
            file.display().to_string()
        ));
    }
    out.push_str("];\n");
    let target = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("web_assets.rs");
    std::fs::write(target, out).expect("OUT_DIR is writable");
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("web/dist is readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// The media type browsers need: module scripts and workers are refused under any other than JavaScript's.
fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
