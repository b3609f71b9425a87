//! Processes of the tests: the geoimport binary (a hard-linked copy), children killed with their test,
//! free ports, GDAL's command line, and the peak memory of a process.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The `geoimport` executable child processes run. Worktrees that share a target directory also share
/// `target/debug/geoimport`, and another worktree's build replaces it at any time, so the test process
/// takes a hard link to it when it first needs it, and keeps using that. Across a long run of many test
/// binaries, set GEOIMPORT_TEST_BIN to a link of your own build taken right after building it.
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
        let copy = dir.join("geoimport");
        let _ = std::fs::remove_file(&copy);
        // A hard link costs nothing and keeps this build's file when cargo links another in its place.
        if std::fs::hard_link(env!("CARGO_BIN_EXE_geoimport"), &copy).is_err() {
            std::fs::copy(env!("CARGO_BIN_EXE_geoimport"), &copy).expect("copy the geoimport executable");
        }
        copy
    })
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

/// A free TCP port on loopback (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
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
