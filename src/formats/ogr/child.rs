//! The child side of [`super::process`]: `geoimport gdal-read <request>` reads with GDAL and writes what
//! the request asks for to stdout, then its result line to stderr. It has no database, no runtime and no
//! logging of its own: stdout is data, and GDAL's messages go to stderr as plain lines.

use std::io::Write;

use serde_json::{Value, json};

use super::process::{FAULT_ENV, RESULT_PREFIX, Request};
use super::{Source, discover, encode_layer, sheet};
use crate::errors::ImportError;

/// Runs one request; the process's exit code.
pub fn main(request: &str) -> i32 {
    gdal::config::set_error_handler(|_, number, message| {
        eprintln!("GDAL error {number}: {message}");
    });
    let result = match serde_json::from_str::<Request>(request) {
        Ok(request) => {
            inject_fault(&request);
            run(request)
        }
        Err(e) => Err(ImportError::unknown(format!("a malformed request to the GDAL reader: {e}"))),
    };
    let (line, code) = match result {
        Ok(answer) => (json!({ "ok": answer }), 0),
        Err(e) => (json!({ "error": { "code": e.code, "detail": e.detail } }), 1),
    };
    eprintln!("{RESULT_PREFIX}{line}");
    code
}

fn run(request: Request) -> Result<Value, ImportError> {
    let mut stdout = std::io::stdout().lock();
    let written = |e: std::io::Error| ImportError::unknown(format!("writing to the worker: {e}"));
    match request {
        Request::Discover { path, options, ext, stem, max_rows } => {
            let plans = discover(&Source { path, options }, &ext, &stem, max_rows)?;
            let json = serde_json::to_vec(&plans).map_err(|e| ImportError::unknown(e.to_string()))?;
            stdout.write_all(&json).map_err(written)?;
            Ok(Value::Null)
        }
        Request::Layer { path, options, plan, max_rows } => {
            let mut send = |chunk: Vec<u8>| stdout.write_all(&chunk).map_err(written);
            let stats = encode_layer(&Source { path, options }, &plan, max_rows, &mut send)?;
            serde_json::to_value(stats).map_err(|e| ImportError::unknown(e.to_string()))
        }
        Request::Sheet { path, ext } => {
            sheet::write_csv(&path, &ext, &mut stdout)?;
            Ok(Value::Null)
        }
    }
}

/// Test hook: `segv:<file name>` crashes, `hog:<file name>` exhausts memory, and `slow:<file name>` waits
/// a minute before reading that file.
fn inject_fault(request: &Request) {
    let Ok(fault) = std::env::var(FAULT_ENV) else { return };
    let path = match request {
        Request::Discover { path, .. } | Request::Layer { path, .. } | Request::Sheet { path, .. } => path,
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    match fault.split_once(':') {
        Some(("segv", file)) if file == name => {
            use nix::sys::signal::{SigHandler, Signal, raise, signal};
            // Rust's own SIGSEGV handler (for stack overflows) would swallow a raised signal: die as GDAL would.
            // SAFETY: restoring the default disposition has no preconditions.
            let _ = unsafe { signal(Signal::SIGSEGV, SigHandler::SigDfl) };
            let _ = raise(Signal::SIGSEGV);
        }
        Some(("slow", file)) if file == name && matches!(request, Request::Layer { .. }) => {
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
        Some(("hog", file)) if file == name => {
            let mut held: Vec<Vec<u8>> = Vec::new();
            loop {
                held.push(vec![1; 64 << 20]);
            }
        }
        _ => {}
    }
}
