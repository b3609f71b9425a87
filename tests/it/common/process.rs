//! Processes of the tests: the geoimport binary (a hard-linked copy), children killed with their test,
//! closed ports, GDAL's command line, and the peak memory of a process.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The `geoimport` executable child processes run (with `geoimport-gdal-read` beside it). Worktrees that share a target directory also share
/// `target/debug/geoimport`, and another worktree's build replaces it at any time, so the test process
/// takes a hard link to it when it first needs it, and keeps using that. Across a long run of many test
/// binaries, set GEOIMPORT_TEST_BIN to a link of your own build taken right after building it (and one of
/// the reader beside it).
pub fn geoimport_bin() -> &'static std::path::Path {
    static COPY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        if let Some(bin) = std::env::var_os("GEOIMPORT_TEST_BIN") {
            return PathBuf::from(bin);
        }
        let temp = std::env::temp_dir();
        // Copies of test processes that have ended.
        for entry in std::fs::read_dir(&temp).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("geoimport-test-bin-")
                && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = temp.join(format!("geoimport-test-bin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // The reader beside the server, where the server looks for it.
        for (name, built) in [
            ("geoimport", env!("CARGO_BIN_EXE_geoimport")),
            ("geoimport-gdal-read", env!("CARGO_BIN_EXE_geoimport-gdal-read")),
        ] {
            let copy = dir.join(name);
            let _ = std::fs::remove_file(&copy);
            // A hard link costs nothing and keeps this build's file when cargo links another in its place.
            if std::fs::hard_link(built, &copy).is_err() {
                std::fs::copy(built, &copy).expect("copy the geoimport executables");
            }
        }
        dir.join("geoimport")
    })
}

/// The GDAL reader executable, beside [`geoimport_bin`].
pub fn reader_bin() -> PathBuf {
    geoimport_bin().with_file_name("geoimport-gdal-read")
}

/// A `geoimport` child process, killed if the test ends first.
pub struct ChildProcess(pub std::process::Child);

impl ChildProcess {
    pub fn spawn(args: &[&str], env: &[(String, String)]) -> ChildProcess {
        let mut cmd = std::process::Command::new(geoimport_bin());
        cmd.args(args).env_remove("DATABASE_URL");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(std::process::Stdio::null());
        if std::env::var_os("GEOIMPORT_TEST_CHILD_LOGS").is_none() {
            cmd.stderr(std::process::Stdio::null());
        }
        ChildProcess(cmd.spawn().expect("spawn geoimport"))
    }

    /// `geoimport serve` on a port the kernel chooses: the server binds port 0 and the port is read from
    /// its "geoimport serving" log line, so no other process can take the port between choice and bind.
    pub async fn serve(env: &[(String, String)]) -> Served {
        let mut cmd = std::process::Command::new(geoimport_bin());
        cmd.arg("serve").env_remove("DATABASE_URL").envs(env.iter().map(|(k, v)| (k, v)));
        Self::serving(cmd).await
    }

    /// Runs `cmd`, a command that becomes `geoimport serve`, on port 0; returns it with its port and log.
    pub async fn serving(mut cmd: std::process::Command) -> Served {
        cmd.env("GEOIMPORT_BIND", "127.0.0.1:0").stdout(std::process::Stdio::null());
        cmd.stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn geoimport serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let log = ChildLog::default();
        let kept = log.clone();
        // Reads the log to its end, so that the server never blocks on a full pipe.
        std::thread::spawn(move || {
            use std::io::BufRead;
            let echo = std::env::var_os("GEOIMPORT_TEST_CHILD_LOGS").is_some();
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if echo {
                    eprintln!("{line}");
                }
                kept.0.lock().unwrap().push(line.clone());
                if let Some(port) = served_port(&line)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(port);
                }
            }
        });
        let child = ChildProcess(child);
        let port = tokio::time::timeout(Duration::from_secs(120), rx)
            .await
            .expect("the server did not start serving within 120 s")
            .expect("the server exited before serving (set GEOIMPORT_TEST_CHILD_LOGS=1 to see its log)");
        Served { process: child, port, log }
    }

    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// Waits for the process to exit, up to `limit`; returns whether it exited.
    pub async fn wait_exit(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(_)) = self.0.try_wait() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port that refuses connections for as long as the value lives: a socket bound to it that
/// never listens. Binding and releasing a port instead would let another test take it in between.
pub struct ClosedPort {
    pub port: u16,
    _socket: tokio::net::TcpSocket,
}

pub fn closed_port() -> ClosedPort {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    ClosedPort { port: socket.local_addr().unwrap().port(), _socket: socket }
}

/// A loopback port whose connections never complete, for as long as the value lives: a listener that
/// never accepts, its queue already full, so that the kernel drops further connection attempts and a
/// client's connect waits, as with a host that does not answer at all.
pub struct SilentPort {
    pub port: u16,
    _listener: tokio::net::TcpListener,
    _queued: Vec<tokio::net::TcpStream>,
}

pub async fn silent_port() -> SilentPort {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut queued = Vec::new();
    for _ in 0..3 {
        let connect = tokio::net::TcpStream::connect(("127.0.0.1", port));
        if let Ok(Ok(c)) = tokio::time::timeout(Duration::from_millis(500), connect).await {
            queued.push(c);
        }
    }
    SilentPort { port, _listener: listener, _queued: queued }
}

/// Runs GDAL's `ogr2ogr` (tests write their fixtures with it).
pub fn ogr2ogr(args: &[&str]) {
    let out = std::process::Command::new("ogr2ogr").args(args).output().expect("ogr2ogr (gdal-bin) is installed");
    assert!(out.status.success(), "ogr2ogr {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Peak resident memory (VmHWM) of a process, in KiB.
pub fn vm_hwm_kb(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process is running");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

/// A server child process, the port it listens on, and its log.
pub struct Served {
    pub process: ChildProcess,
    pub port: u16,
    pub log: ChildLog,
}

/// The log lines of a child process, kept as they come.
#[derive(Clone, Default)]
pub struct ChildLog(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl ChildLog {
    /// Keeps the lines `reader` gives, as they come, until it ends.
    pub fn follow(reader: impl std::io::Read + Send + 'static) -> ChildLog {
        let log = ChildLog::default();
        let kept = log.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(reader).lines().map_while(Result::ok) {
                kept.0.lock().unwrap().push(line);
            }
        });
        log
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Waits for a line that contains every one of `parts`.
    pub async fn wait_for(&self, parts: &[&str], limit: Duration) {
        let start = Instant::now();
        while !self.0.lock().unwrap().iter().any(|l| parts.iter().all(|p| l.contains(p))) {
            assert!(start.elapsed() < limit, "the child never logged a line with {parts:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The port of a "geoimport serving" log line, in the text format (colours or not) or JSON.
fn served_port(line: &str) -> Option<u16> {
    if !line.contains("geoimport serving") {
        return None;
    }
    let plain: String = {
        // Drops ANSI colour sequences (ESC [ ... m).
        let mut out = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                chars.by_ref().find(|c| *c == 'm');
            } else {
                out.push(c);
            }
        }
        out
    };
    let at = plain.find("bind=").map(|i| i + 5).or_else(|| plain.find("\"bind\":\"").map(|i| i + 8))?;
    let addr: String = plain[at..].chars().take_while(|c| !c.is_whitespace() && *c != '"').collect();
    addr.parse::<std::net::SocketAddr>().ok().map(|a| a.port())
}
