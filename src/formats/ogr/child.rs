//! The child side of [`super::process`]: `geoimport-gdal-read gdal-read <file>` reads with GDAL
//! (spreadsheets with calamine, see `formats::sheet::workbook`) and writes what the request asks for to
//! stdout, then its result line to stderr. It has no database, no runtime and no logging of its own:
//! stdout is data, and GDAL's messages go to stderr as plain lines.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use super::process::{FAULT_ENV, HIDE_ENV, ISOLATION_UNAVAILABLE, RESULT_PREFIX, ROOT_ENV, Request};
use super::{Source, discover, encode_layer};
use crate::errors::{ImportError, codes};

/// Set when GDAL reports running out of memory: its drivers catch the failed allocation and report a
/// file they could not read, which would hide the real cause.
static OUT_OF_MEMORY: AtomicBool = AtomicBool::new(false);
/// `CPLE_OutOfMemory` of cpl_error.h (a macro, so not in the generated bindings).
const CPLE_OUT_OF_MEMORY: i32 = 2;

/// Runs the request read from stdin; the process's exit code.
pub fn main() -> i32 {
    let mut request = String::new();
    let _ = std::io::stdin().read_to_string(&mut request);
    let parsed = serde_json::from_str::<Request>(&request);
    // First, while this process has one thread: no network, and nothing of the data directory but the
    // folder of the file to read, whatever the file asks for.
    let view = parsed.as_ref().ok().and_then(|r| view_for(r.path()));
    let unavailable = if parsed.as_ref().is_ok_and(|r| has_fault(r, "no-namespaces")) {
        // Test hook: a machine without user namespaces.
        super::confine::network_features_off();
        Some("no namespaces: test hook".to_string())
    } else {
        super::confine::isolate(view.as_ref())
    };
    if let Some(why) = unavailable {
        eprintln!("{ISOLATION_UNAVAILABLE}{why}");
    }
    gdal::config::set_error_handler(|class, number, message| {
        if number == CPLE_OUT_OF_MEMORY {
            OUT_OF_MEMORY.store(true, Ordering::Relaxed);
        }
        if matches!(class, gdal::errors::CplErrType::Failure | gdal::errors::CplErrType::Fatal) {
            super::failures::record(message);
        }
        eprintln!("GDAL error {number}: {message}");
    });
    let result = match parsed {
        Ok(request) => inject_fault(&request).and_then(|()| run(request)),
        Err(e) => Err(ImportError::unknown(format!("a malformed request to the GDAL reader: {e}"))),
    };
    let result = result.map_err(|e| match OUT_OF_MEMORY.load(Ordering::Relaxed) {
        true => {
            ImportError::new(codes::DATASET_TOO_BIG, format!("GDAL ran out of memory reading the file: {}", e.detail))
        }
        false => e,
    });
    let (line, code) = match result {
        Ok(answer) => (json!({ "ok": answer }), 0),
        Err(e) => (json!({ "error": { "code": e.code, "detail": e.detail } }), 1),
    };
    eprintln!("{RESULT_PREFIX}{line}");
    code
}

/// What this reader may see of the data directory (named by its parent): the folder of `path`.
fn view_for(path: &std::path::Path) -> Option<super::confine::View> {
    let root = std::path::PathBuf::from(std::env::var_os(ROOT_ENV)?);
    let keep = std::fs::canonicalize(path).ok()?.parent()?.to_path_buf();
    let hide = std::env::var_os(HIDE_ENV).map(|h| std::env::split_paths(&h).collect()).unwrap_or_default();
    keep.starts_with(&root).then_some(super::confine::View { root, keep, hide })
}

fn run(request: Request) -> Result<Value, ImportError> {
    let mut stdout = std::io::stdout().lock();
    let written = |e: std::io::Error| ImportError::unknown(format!("writing to the worker: {e}"));
    match request {
        Request::Discover { path, options, ext, stem, max_rows } => {
            let plans = discover(&Source { path, options, ext: ext.clone() }, &ext, &stem, max_rows)?;
            let json = serde_json::to_vec(&plans).map_err(|e| ImportError::unknown(e.to_string()))?;
            stdout.write_all(&json).map_err(written)?;
            Ok(Value::Null)
        }
        Request::Layer { path, options, ext, plan, max_rows } => {
            let mut send = |chunk: Vec<u8>| stdout.write_all(&chunk).map_err(written);
            let stats = encode_layer(&Source { path, options, ext }, &plan, max_rows, &mut send)?;
            serde_json::to_value(stats).map_err(|e| ImportError::unknown(e.to_string()))
        }
        Request::Raster { path, ext, max_bytes } => {
            let scratch = path.parent().unwrap_or(std::path::Path::new(".")).to_path_buf();
            let summary = crate::formats::raster::warp::write_tiles(&path, &ext, max_bytes, &mut stdout, &scratch)?;
            serde_json::to_value(summary).map_err(|e| ImportError::unknown(e.to_string()))
        }
        Request::Sheet { path, ext } => {
            let summary = crate::formats::sheet::workbook::write_csv(&path, &ext, &mut stdout)?;
            serde_json::to_value(summary).map_err(|e| ImportError::unknown(e.to_string()))
        }
    }
}

/// Test hook: the faults named for the file of `request`, from a comma-separated list of
/// `<fault>:<file name>`.
fn faults_for(request: &Request) -> Vec<String> {
    let Ok(faults) = std::env::var(FAULT_ENV) else { return Vec::new() };
    let name = request.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    faults
        .split(',')
        .filter_map(|f| f.split_once(':'))
        .filter(|(_, file)| *file == name)
        .map(|(fault, _)| fault.to_string())
        .collect()
}

fn has_fault(request: &Request, fault: &str) -> bool {
    faults_for(request).iter().any(|f| f == fault)
}

/// Test hook: for its file, `segv` crashes, `abort` aborts, `hog` exhausts memory, `gdal-oom` has GDAL
/// report that it ran out of memory, `slow` waits a minute before any read and `slow-rows` before reading
/// features, `spin` burns processor time, `limits` fails telling the reader's limits; `no-namespaces`
/// (read before, in `main`) reads as on a machine without user namespaces.
fn inject_fault(request: &Request) -> Result<(), ImportError> {
    let rows = matches!(request, Request::Layer { .. });
    for fault in faults_for(request) {
        match fault.as_str() {
            "segv" => {
                use nix::sys::signal::{SigHandler, Signal, raise, signal};
                // Rust's own SIGSEGV handler (for stack overflows) would swallow a raised signal: die as GDAL would.
                // SAFETY: restoring the default disposition has no preconditions.
                let _ = unsafe { signal(Signal::SIGSEGV, SigHandler::SigDfl) };
                let _ = raise(Signal::SIGSEGV);
            }
            "abort" => std::process::abort(),
            "hog" => {
                let mut held: Vec<Vec<u8>> = Vec::new();
                loop {
                    held.push(vec![1; 64 << 20]);
                }
            }
            "gdal-oom" => {
                // SAFETY: a plain C call with a constant, NUL-terminated format string.
                unsafe { gdal_sys::CPLError(gdal_sys::CPLErr::CE_Failure, CPLE_OUT_OF_MEMORY, c"simulated".as_ptr()) };
                return Err(ImportError::new(codes::UNSUPPORTED_FORMAT, "GDAL could not read the file"));
            }
            "slow" => std::thread::sleep(std::time::Duration::from_secs(60)),
            // Tells the limits the reader runs under.
            "limits" => {
                use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit};
                let shown = |r| match getrlimit(r) {
                    Ok((soft, _)) if soft == RLIM_INFINITY => "unlimited".to_string(),
                    Ok((soft, _)) => soft.to_string(),
                    Err(e) => e.to_string(),
                };
                let detail = format!(
                    "test hook: address space {}, processor seconds {}",
                    shown(Resource::RLIMIT_AS),
                    shown(Resource::RLIMIT_CPU)
                );
                return Err(ImportError::new(codes::UNKNOWN, detail));
            }
            // Burns processor time, as a reader caught in a loop would.
            "spin" => {
                let mut x = 0u64;
                loop {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
            // `peek`: look at the data directory as a subverted reader would, and fail saying what it saw.
            "peek" => {
                let root = std::path::PathBuf::from(std::env::var_os(ROOT_ENV).unwrap_or_default());
                let key = std::fs::read(root.join("secret.key")).map(|_| "readable").unwrap_or("unreadable");
                let mut seen: Vec<String> = ["staging", "work"]
                    .iter()
                    .flat_map(|d| std::fs::read_dir(root.join(d)).into_iter().flatten().flatten())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                seen.sort();
                let detail = format!("test hook: secret.key {key}; job folders seen: {}", seen.join(" "));
                return Err(ImportError::new(codes::UNKNOWN, detail));
            }
            // `net-<port>`: try to reach 127.0.0.1:<port>, and fail the read saying whether it could.
            net if net.starts_with("net-") => {
                let port: u16 = net["net-".len()..].parse().unwrap_or(0);
                let reached = std::net::TcpStream::connect_timeout(
                    &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                    std::time::Duration::from_secs(2),
                );
                let detail = match reached {
                    Ok(_) => "test hook: the reader reached the network".to_string(),
                    Err(e) => format!("test hook: the reader has no network ({e})"),
                };
                return Err(ImportError::new(codes::UNKNOWN, detail));
            }
            "slow-rows" if rows => std::thread::sleep(std::time::Duration::from_secs(60)),
            _ => {}
        }
    }
    Ok(())
}
