//! GDAL runs in a child process (`geoimport-gdal-read`, a binary of its own), one per read, never in the
//! server or the worker.
//! GDAL is C and C++ fed with untrusted files: a damaged file can crash it, and some drivers (KML) hold
//! whole documents in memory. Spreadsheets are read in the same children, with calamine, which holds a
//! whole sheet in memory. In a child, a crash fails only its import, with a clear error; an
//! address-space limit turns a runaway read into 6666 instead of the kernel's OOM killer choosing a victim;
//! and a CPU limit stops a read that spins.
//!
//! The protocol: one JSON [`Request`] on stdin; the child writes its data (layer plans as JSON, a
//! binary COPY stream, or a sheet as CSV) to stdout and, last, one result line on stderr: `{"ok": ...}` or
//! `{"error": {"code", "detail"}}`. Anything else it says on stderr is GDAL's own messages.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::plan::LayerPlan;
use crate::errors::{ImportError, codes};
use crate::load::copy::CHUNK_BYTES;

/// Marks the child's result line on stderr.
pub const RESULT_PREFIX: &str = "geoimport-result: ";
/// Tells the child where the data directory is, of which it may see only its file's folder.
pub const ROOT_ENV: &str = "GEOIMPORT_READER_ROOT";
/// Files outside the data directory that the child must not read (the key file), as a path list.
pub const HIDE_ENV: &str = "GEOIMPORT_READER_HIDE";
/// Marks the child's line saying it could not leave the network (see `confine::isolate`).
pub const ISOLATION_UNAVAILABLE: &str = "geoimport-no-network-namespace: ";
/// Whether the missing network namespace was already reported (once per process is enough).
static ISOLATION_REPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// The environment variable that carries a test fault into the child (see `test_gdal_fault`).
pub const FAULT_ENV: &str = "GEOIMPORT_TEST_GDAL_FAULT";
/// Largest answer read from a reader (layer plans as JSON; at most 50 layers, but any names).
const MAX_ANSWER_BYTES: u64 = 16 << 20;
/// Longest line of a reader's messages kept (the result line included).
const MAX_MESSAGE_BYTES: u64 = 64 << 10;
/// Lines of GDAL's own messages kept to explain a crash.
const KEPT_MESSAGES: usize = 5;

/// What a child is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Request {
    /// The layers worth importing and their columns: stdout gets the plans as JSON.
    Discover { path: PathBuf, options: Vec<String>, ext: String, stem: String, max_rows: Option<i64> },
    /// One layer's features as binary COPY rows on stdout; the result is the encoder's counts.
    Layer { path: PathBuf, options: Vec<String>, ext: String, plan: LayerPlan, max_rows: Option<i64> },
    /// A spreadsheet's first sheet with data as CSV on stdout, header first, read with calamine (see
    /// `formats::sheet`); the result is what it found worth telling (`SheetSummary`).
    Sheet { path: PathBuf, ext: String },
    /// A raster warped to web mercator and cut in tiles, every level's as COPY text on stdout (see
    /// `formats::raster::warp`); the result is its `RasterSummary`.
    /// `max_bytes` bounds its pixels once warped, as unpacking is bounded (a compressed raster can declare
    /// any size).
    Raster { path: PathBuf, ext: String, max_bytes: u64 },
}

impl Request {
    /// What reads for it, as its errors name it.
    fn reader(&self) -> &'static str {
        match self {
            Request::Sheet { .. } => "calamine",
            Request::Discover { .. } | Request::Layer { .. } | Request::Raster { .. } => "GDAL",
        }
    }

    pub fn path(&self) -> &std::path::Path {
        match self {
            Request::Discover { path, .. }
            | Request::Layer { path, .. }
            | Request::Sheet { path, .. }
            | Request::Raster { path, .. } => path,
        }
    }
}

/// The reader binary installed beside the running one (`geoimport-gdal-read`, built with it).
pub fn default_reader() -> PathBuf {
    let this = std::env::current_exe().unwrap_or_default();
    this.with_file_name("geoimport-gdal-read")
}

/// How GDAL children are started: built from the settings once (see `services`).
#[derive(Debug, Clone)]
pub struct GdalOptions {
    /// The executable whose `gdal-read` subcommand reads (this one, unless a test says otherwise).
    pub exe: PathBuf,
    /// The data directory: the only place a reader is asked to read from.
    pub root: PathBuf,
    /// Files a reader must not see although they are outside the data directory (the key file).
    pub hide: Vec<PathBuf>,
    pub memory_mb: u64,
    pub cpu_secs: u64,
    /// Test hook: `segv:<file>` or `hog:<file>`.
    pub fault: Option<String>,
}

/// Starts GDAL children for one job.
#[derive(Debug, Clone)]
pub struct GdalReader {
    options: GdalOptions,
    /// Cancelled when the job the readers work for stops: they are killed, even while blocked.
    stop: CancellationToken,
}

impl GdalReader {
    pub fn new(options: &GdalOptions, stop: CancellationToken) -> GdalReader {
        GdalReader { options: options.clone(), stop }
    }

    /// Starts a child for `request`.
    pub fn spawn(&self, request: &Request) -> Result<Running, ImportError> {
        self.check_path(request.path())?;
        let mut command = Command::new(&self.options.exe);
        let json = serde_json::to_vec(request).map_err(|e| ImportError::unknown(e.to_string()))?;
        // The request goes on stdin (a wide layer's plan can exceed the kernel's limit for one argument);
        // the argument only names the file, for whoever lists processes.
        command
            .arg("gdal-read")
            .arg(request.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Only what GDAL reads: a file that subverts GDAL must find no database URL or sealing key here.
        command.env_clear().envs(std::env::vars_os().filter(|(k, _)| child_may_see(&k.to_string_lossy())));
        command.env(ROOT_ENV, &self.options.root);
        if let Ok(hide) = std::env::join_paths(&self.options.hide) {
            command.env(HIDE_ENV, hide);
        }
        if let Some(fault) = &self.options.fault {
            command.env(FAULT_ENV, fault);
        }
        let (memory, cpu, parent) = (self.options.memory_mb << 20, self.options.cpu_secs, nix::unistd::getpid());
        // SAFETY: only async-signal-safe calls (prctl, getppid, setrlimit) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                use nix::sys::resource::{Resource, setrlimit};
                // Dies with the thread that started it (which waits for it to end), so a worker that is
                // killed leaves no reader behind.
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
                if nix::unistd::getppid() != parent {
                    return Err(std::io::Error::other("the worker is gone"));
                }
                if memory > 0 {
                    setrlimit(Resource::RLIMIT_AS, memory, memory)?;
                }
                // The soft limit sends SIGXCPU, which we report as a timeout; the hard one is a backstop.
                setrlimit(Resource::RLIMIT_CPU, cpu, cpu + 5)?;
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|e| {
            ImportError::unknown(format!("could not start the GDAL reader {}: {e}", self.options.exe.display()))
        })?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        // Drained on its own thread so that a chatty GDAL never blocks on a full pipe.
        let messages = std::thread::spawn(move || read_messages(stderr));
        let mut running = Running {
            child,
            stdout,
            messages: Some(messages),
            reader: request.reader(),
            memory_mb: self.options.memory_mb,
            cpu_secs: self.options.cpu_secs,
            unreaped: Arc::new(Mutex::new(true)),
            watch: None,
        };
        running.kill_on(self.stop.clone());
        if let Some(mut stdin) = running.child.stdin.take() {
            // A child that died at once cannot take it; its exit status then says why.
            let _ = stdin.write_all(&json);
        }
        Ok(running)
    }

    /// Runs a request whose answer is one JSON document on stdout.
    pub fn call<T: serde::de::DeserializeOwned>(&self, request: &Request) -> Result<T, ImportError> {
        let mut running = self.spawn(request)?;
        let mut out = Vec::new();
        // A file can make the answer (its layers' plans) large: it is read up to a bound, not whole.
        let read = (&mut running.stdout).take(MAX_ANSWER_BYTES + 1).read_to_end(&mut out);
        if out.len() as u64 > MAX_ANSWER_BYTES {
            running.kill();
            return Err(ImportError::new(
                codes::DATASET_TOO_BIG,
                format!(
                    "the file describes more layers and fields than can be read (over {} MiB)",
                    MAX_ANSWER_BYTES >> 20
                ),
            ));
        }
        running.finish()?;
        read.map_err(|e| ImportError::unknown(format!("reading the GDAL reader's answer: {e}")))?;
        serde_json::from_slice(&out).map_err(|e| ImportError::unknown(format!("the GDAL reader's answer: {e}")))
    }
}

impl GdalReader {
    /// GDAL takes a path as a dataset name, and a name can be a `/vsi…/` URL or a driver's prefix
    /// (`CSV:…`): only a real file or folder inside the data directory is handed to a reader.
    fn check_path(&self, path: &std::path::Path) -> Result<(), ImportError> {
        let real = std::fs::canonicalize(path)
            .map_err(|e| ImportError::new(codes::FILE_IO, format!("the file to read: {e}")))?;
        let inside = real.starts_with(&self.options.root) && !real.to_string_lossy().starts_with("/vsi");
        if !inside {
            return Err(ImportError::unknown("a reader was asked to read outside the data directory"));
        }
        Ok(())
    }
}

/// Environment variables a GDAL child inherits: the loader's, GDAL's and its drivers', PROJ's and the
/// locale's; nothing of ours.
fn child_may_see(name: &str) -> bool {
    const EXACT: &[&str] = &["PATH", "HOME", "TMPDIR", "TZ", "LANG", "LANGUAGE", "LD_LIBRARY_PATH"];
    const PREFIXES: &[&str] = &[
        "GDAL_",
        "CPL_",
        "OGR_",
        "PROJ_",
        "LC_",
        "SHAPE_",
        "OSM_",
        "GML_",
        "DXF_",
        "KML_",
        "GPX_",
        "XLSX_",
        "ODS_",
        "XLS_",
        "MITAB_",
        "OPENFILEGDB_",
        "FGDB_",
    ];
    EXACT.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Whether a reader's last words say that it ran out of memory.
fn said_out_of_memory(last: &[String]) -> bool {
    last.iter().any(|l| {
        let l = l.to_ascii_lowercase();
        l.contains("memory allocation of") || l.contains("bad_alloc") || l.contains("out of memory")
    })
}

/// The result line and the last few other lines of a child's stderr.
type Messages = (Option<Value>, Vec<String>);

fn read_messages(stderr: std::process::ChildStderr) -> Messages {
    let mut result = None;
    let mut last = std::collections::VecDeque::new();
    let mut reader = BufReader::new(stderr);
    let mut raw = Vec::new();
    loop {
        // A line is kept up to a bound (GDAL may quote a file in its messages); the rest of it is skipped.
        raw.clear();
        match (&mut reader).take(MAX_MESSAGE_BYTES).read_until(b'\n', &mut raw) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if raw.last() != Some(&b'\n') && raw.len() as u64 == MAX_MESSAGE_BYTES {
            let mut rest = Vec::new();
            while matches!((&mut reader).take(MAX_MESSAGE_BYTES).read_until(b'\n', &mut rest), Ok(n) if n > 0)
                && rest.last() != Some(&b'\n')
            {
                rest.clear();
            }
        }
        let line = String::from_utf8_lossy(&raw).trim_end_matches(['\n', '\r']).to_string();
        if let Some(why) = line.strip_prefix(ISOLATION_UNAVAILABLE) {
            if !ISOLATION_REPORTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!(
                    reason = why,
                    "GDAL readers cannot get a network namespace of their own here (user namespaces disabled?); \
                     they still run with GDAL's network features off"
                );
            }
            continue;
        }
        match line.strip_prefix(RESULT_PREFIX) {
            Some(json) => result = serde_json::from_str(json).ok(),
            None => {
                tracing::debug!(target: "gdal", message = %line, "GDAL reader");
                if last.len() == KEPT_MESSAGES {
                    last.pop_front();
                }
                last.push_back(line);
            }
        }
    }
    (result, last.into())
}

/// A child at work. Dropping it before [`Running::finish`] kills the child.
pub struct Running {
    child: Child,
    pub stdout: ChildStdout,
    messages: Option<std::thread::JoinHandle<Messages>>,
    /// What reads in it (GDAL or calamine), for the errors that tell how it died.
    reader: &'static str,
    memory_mb: u64,
    cpu_secs: u64,
    /// True until the child is reaped: a kill after that could hit a process that reused its pid.
    unreaped: Arc<Mutex<bool>>,
    /// Ends the [`Running::kill_when_closed`] watch (by being dropped).
    watch: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Running {
    /// Kills the child when `stop` is cancelled (its job stopped: timeout, cancel, lost lease) while a thread
    /// may be blocked reading it; never after it is reaped, when its pid may belong to another.
    fn kill_on(&mut self, stop: CancellationToken) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (unreaped, pid) = (self.unreaped.clone(), self.child.id());
        let (done, ended) = tokio::sync::oneshot::channel::<()>();
        self.watch = Some(done);
        runtime.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {
                    if *unreaped.lock().unwrap_or_else(|e| e.into_inner()) {
                        let pid = nix::unistd::Pid::from_raw(pid as i32);
                        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                    }
                }
                _ = ended => {}
            }
        });
    }

    /// Kills the child now (its output is no longer wanted).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
    }

    /// Waits for the child to end. The lock is held only around each non-blocking look, so the kill watch
    /// never waits behind a slow child; and the pid is released (reaped) only under it.
    fn reap(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.watch = None;
        loop {
            {
                let mut unreaped = self.unreaped.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(status) = self.child.try_wait()? {
                    *unreaped = false;
                    return Ok(status);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Copies stdout to `send` in chunks of [`CHUNK_BYTES`].
    pub fn forward(&mut self, mut send: impl FnMut(Vec<u8>) -> Result<(), ImportError>) -> Result<(), ImportError> {
        let mut chunk = vec![0; CHUNK_BYTES];
        let mut filled = 0;
        loop {
            let n = match self.stdout.read(&mut chunk[filled..]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ImportError::unknown(format!("reading from the GDAL reader: {e}"))),
            };
            if n == 0 {
                break;
            }
            filled += n;
            if filled == chunk.len() {
                send(std::mem::replace(&mut chunk, vec![0; CHUNK_BYTES]))?;
                filled = 0;
            }
        }
        if filled > 0 {
            chunk.truncate(filled);
            send(chunk)?;
        }
        Ok(())
    }

    /// Waits for the child and returns its answer, or the error it reported, or what its death means.
    pub fn finish(mut self) -> Result<Value, ImportError> {
        let status = self.reap().map_err(|e| ImportError::unknown(format!("waiting for the GDAL reader: {e}")))?;
        let (result, last) = self.messages.take().and_then(|m| m.join().ok()).unwrap_or_default();
        if let Some(result) = result {
            if let Some(error) = result.get("error") {
                let code = error["code"].as_i64().and_then(|c| i32::try_from(c).ok()).unwrap_or(codes::UNKNOWN);
                let mut detail = error["detail"].as_str().unwrap_or_default().to_string();
                if code == codes::DATASET_TOO_BIG && self.memory_mb > 0 {
                    detail.push_str(&format!(" (a reader may use {} MB)", self.memory_mb));
                }
                return Err(ImportError::new(code, detail));
            }
            if status.success() {
                return Ok(result.get("ok").cloned().unwrap_or(Value::Null));
            }
        }
        Err(self.death(status, &last))
    }

    fn death(&self, status: std::process::ExitStatus, last: &[String]) -> ImportError {
        use nix::sys::signal::Signal;
        let reader = self.reader;
        let said = if last.is_empty() { String::new() } else { format!(" (it said: {})", last.join(" / ")) };
        match status.signal().and_then(|s| Signal::try_from(s).ok()) {
            Some(Signal::SIGXCPU) => ImportError::new(
                codes::TIMED_OUT,
                format!("reading the file with {reader} used more than {} seconds of processor time", self.cpu_secs),
            ),
            // A failed allocation aborts (Rust and C++ alike) saying so; the kernel's OOM killer sends SIGKILL.
            // A crash on a file is a problem of the file (the reference's 2001 for ogr2ogr's segfaults).
            Some(Signal::SIGABRT) if !said_out_of_memory(last) => ImportError::new(
                codes::UNABLE_TO_LOAD,
                format!("{reader} crashed while reading the file (SIGABRT); the file is probably damaged{said}"),
            ),
            Some(Signal::SIGABRT | Signal::SIGKILL) if self.memory_mb > 0 => ImportError::new(
                codes::DATASET_TOO_BIG,
                format!(
                    "reading the file with {reader} needed more than the {} MB of memory a reader may use{said}",
                    self.memory_mb
                ),
            ),
            Some(signal) => ImportError::new(
                codes::UNABLE_TO_LOAD,
                format!("{reader} crashed while reading the file ({signal}); the file is probably damaged{said}"),
            ),
            None => ImportError::new(
                codes::UNABLE_TO_LOAD,
                format!(
                    "the {reader} reader stopped while reading the file (exit status {}){said}",
                    status.code().unwrap_or(-1)
                ),
            ),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.messages.is_some() {
            let _ = self.child.kill();
            let _ = self.reap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::child_may_see;

    #[test]
    fn children_see_gdal_settings_and_none_of_our_secrets() {
        for name in ["GDAL_DATA", "PROJ_DATA", "CPL_DEBUG", "LC_ALL", "PATH", "LD_LIBRARY_PATH", "OSM_CONFIG_FILE"] {
            assert!(child_may_see(name), "{name}");
        }
        for name in
            ["DATABASE_URL", "GEOIMPORT_SECRET_KEY", "GEOIMPORT_METRICS_TOKEN", "PGPASSWORD", "AWS_SECRET_ACCESS_KEY"]
        {
            assert!(!child_may_see(name), "{name}");
        }
    }
}
