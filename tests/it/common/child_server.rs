//! A `geoimport serve` child process on a test app's database, for attacks whose cost is measured on the
//! server alone (its memory high-water mark, CPU time, open connections in /proc).

use std::time::{Duration, Instant};

use super::raw_http::unpooled_client;
use super::*;

pub struct ChildServer {
    pub process: ChildProcess,
    pub base: String,
    pub port: u16,
    pub log: ChildLog,
}

impl ChildServer {
    /// An API-only server (workers off): the app's in-process workers, if any, do the jobs.
    pub async fn api_only(app: &TestApp, env: &[(&str, &str)]) -> ChildServer {
        let env = [&[("GEOIMPORT_WORKERS", "0")], env].concat();
        Self::start_with_open_files(app, &env, None).await
    }

    /// A server with its own workers (the default number unless `env` says otherwise).
    pub async fn with_workers(app: &TestApp, env: &[(&str, &str)]) -> ChildServer {
        Self::start_with_open_files(app, env, None).await
    }

    /// Starts the server, under a soft limit of `soft_open_files` descriptors if given; `env` comes on top
    /// of the app's (later entries win).
    pub async fn start_with_open_files(
        app: &TestApp,
        env: &[(&str, &str)],
        soft_open_files: Option<u32>,
    ) -> ChildServer {
        let mut vars = app.child_env();
        vars.push(("GEOIMPORT_MIN_FREE_BYTES".into(), "0".into()));
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let Served { process, port, log } = match soft_open_files {
            None => ChildProcess::serve(&vars).await,
            Some(soft) => {
                // The shell lowers its soft limit, then becomes the server (same process id).
                let mut cmd = std::process::Command::new("sh");
                cmd.arg("-c").arg(format!("ulimit -S -n {soft} && exec \"$0\" serve")).arg(geoimport_bin());
                cmd.env_remove("DATABASE_URL").envs(vars.iter().map(|(k, v)| (k, v)));
                ChildProcess::serving(cmd).await
            }
        };
        let base = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        let client = unpooled_client();
        loop {
            if let Ok(r) = client.get(format!("{base}/livez")).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "the child server never answered /livez");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ChildServer { process, base, port, log }
    }

    /// A line of /proc/<pid>/status in kB (VmRSS, VmHWM).
    pub fn status_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Client connections the server has accepted and holds open: its sockets whose local port is the
    /// listening port (the listener itself excluded).
    pub fn accepted_connections(&self) -> usize {
        let pid = self.process.pid();
        let tcp = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
        let port_hex = format!(":{:04X}", self.port);
        let inodes: std::collections::HashSet<String> = tcp
            .lines()
            .skip(1)
            .filter_map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                // local address, state (0A is LISTEN), inode
                (cols[1].ends_with(&port_hex) && cols[3] != "0A").then(|| cols[9].to_string())
            })
            .collect();
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|dir| {
                dir.flatten()
                    .filter_map(|e| std::fs::read_link(e.path()).ok())
                    .filter_map(|l| l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_string))
                    .filter(|inode| inodes.contains(inode))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Whether /livez answers now.
    pub async fn live(&self) -> bool {
        unpooled_client().get(format!("{}/livez", self.base)).send().await.is_ok_and(|r| r.status() == 200)
    }

    /// The most memory the process has held at once (VmHWM), in MiB.
    pub fn peak_rss_mib(&self) -> u64 {
        self.status_kb("VmHWM") >> 10
    }

    /// CPU time used so far (user + system), in clock ticks (see [`ticks_per_second`]).
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.process.pid())).unwrap();
        // The command name may hold spaces; the fields after it do not.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }
}

/// Clock ticks per second for [`ChildServer::cpu_ticks`].
pub fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).unwrap().unwrap() as u64
}
