//! Threat: other users and processes of the server's own machine. The embedded database must not let them
//! in by trust, nor be set up through names they planted; the server must not work as a superuser, and its
//! secrets must not sit in other processes' environments.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::*;
use nix::sys::signal::Signal;
use sha2::Digest;
use sqlx::{ConnectOptions, Connection};

/// A data directory the cluster's user (postgres, when the tests run as root) can enter.
fn data_dir(parent: &Path, deep: bool) -> PathBuf {
    std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut dir = parent.to_path_buf();
    if deep {
        // Deep enough that the cluster's socket cannot live in it (Unix socket paths are short).
        for part in ["a-rather-long-directory-name", "and-another-long-directory-name"] {
            dir.push(part);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    dir.join("data")
}

/// Runs `geoimport user create` on the embedded cluster of `data`; its JSON line, or its error text.
fn user_create(data: &Path, name: &str, env: &[(&str, &str)]) -> Result<serde_json::Value, String> {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_geoimport"));
    cmd.args(["user", "create", name, "--json"])
        .env("GEOIMPORT_DATA_DIR", data)
        .env("GEOIMPORT_LOG_FORMAT", "text")
        .env_remove("DATABASE_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let last = String::from_utf8(out.stdout).unwrap().lines().last().unwrap_or_default().to_string();
    Ok(serde_json::from_str(&last).unwrap())
}

fn stop_cluster(data: &Path) {
    let bin = std::fs::read_dir("/usr/lib/postgresql").unwrap().flatten().map(|e| e.path().join("bin")).last().unwrap();
    let mut cmd = std::process::Command::new(bin.join("pg_ctl"));
    cmd.args(["stop", "-D", &data.join("postgres").to_string_lossy(), "-m", "fast", "-w"]);
    if nix::unistd::geteuid().is_root() {
        use std::os::unix::process::CommandExt;
        let pg = nix::unistd::User::from_name("postgres").unwrap().unwrap();
        cmd.uid(pg.uid.as_raw()).gid(pg.gid.as_raw());
    }
    let _ = cmd.output();
}

/// `geoimport serve` on the embedded cluster of `data`, once it answers /readyz.
async fn serve_embedded(data: &Path, extra: &[(&str, &str)]) -> ChildProcess {
    let mut env = vec![("GEOIMPORT_DATA_DIR".to_string(), data.display().to_string())];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let Served { process: server, port, .. } = ChildProcess::serve(&env).await;
    let client = http_client();
    let start = std::time::Instant::now();
    while !client.get(format!("http://127.0.0.1:{port}/readyz")).send().await.is_ok_and(|r| r.status() == 200) {
        assert!(start.elapsed() < Duration::from_secs(120), "the embedded server never became ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server
}

async fn stop_server(mut server: ChildProcess) {
    server.signal(Signal::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(30)).await);
}

fn socket_options(data: &Path, user: &str) -> sqlx::postgres::PgConnectOptions {
    sqlx::postgres::PgConnectOptions::new().socket(data.join("postgres")).username(user).database("geoimport")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_embedded_database_asks_for_a_password_and_the_server_is_no_superuser() {
    let parent = tempfile::tempdir().unwrap();
    let data = data_dir(parent.path(), false);
    let server = serve_embedded(&data, &[]).await;
    // Whoever reaches the socket gets nothing without the password, not even as the superuser.
    for user in ["postgres", "geoimport"] {
        let refused = socket_options(&data, user).connect().await;
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("password"), "{user} got in without a password: {message}");
    }
    let secrets: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("embedded-postgres.json")).unwrap()).unwrap();
    let mode = std::fs::metadata(data.join("embedded-postgres.json")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let mut app = socket_options(&data, "geoimport")
        .password(secrets["app_password"].as_str().unwrap())
        .connect()
        .await
        .expect("the server's role connects with its password");
    let superuser: bool = sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        .fetch_one(&mut app)
        .await
        .unwrap();
    assert!(!superuser, "the server works as a superuser");
    let owns: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE tableowner = 'geoimport' AND schemaname = 'geoimport'",
    )
    .fetch_one(&mut app)
    .await
    .unwrap();
    assert!(owns >= 4, "the server's role owns its tables");
    app.close().await.ok();
    stop_server(server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_made_with_trust_by_an_earlier_version_is_converted_and_keeps_its_data() {
    let parent = tempfile::tempdir().unwrap();
    let data = data_dir(parent.path(), false);
    user_create(&data, "first", &[]).expect("the first start");
    stop_cluster(&data);
    // Make it look like an earlier version's: trust everywhere, no password file.
    let hba = data.join("postgres/pg_hba.conf");
    let text = std::fs::read_to_string(&hba).unwrap().replace("scram-sha-256", "trust");
    std::fs::write(&hba, text).unwrap();
    std::fs::remove_file(data.join("embedded-postgres.json")).unwrap();
    let created = user_create(&data, "second", &[]).expect("the start after the upgrade");
    assert_eq!(created["username"], "second");
    let server = serve_embedded(&data, &[]).await;
    let refused = socket_options(&data, "postgres").connect().await;
    assert!(refused.is_err(), "trust survived the upgrade");
    let secrets: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("embedded-postgres.json")).unwrap()).unwrap();
    let mut app =
        socket_options(&data, "geoimport").password(secrets["app_password"].as_str().unwrap()).connect().await.unwrap();
    let users: Vec<String> =
        sqlx::query_scalar("SELECT username FROM geoimport.users ORDER BY 1").fetch_all(&mut app).await.unwrap();
    assert_eq!(users, ["first", "second"]);
    app.close().await.ok();
    stop_server(server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_socket_directory_planted_in_the_temp_dir_is_refused_not_followed() {
    let parent = tempfile::tempdir().unwrap();
    let data = data_dir(parent.path(), true);
    std::fs::create_dir_all(&data).unwrap();
    let cluster = std::fs::canonicalize(&data).unwrap().join("postgres");
    assert!(cluster.as_os_str().len() >= 80, "the test needs a deep data directory");
    let digest = hex::encode(sha2::Sha256::digest(cluster.as_os_str().as_encoded_bytes()));
    let planted = PathBuf::from(format!("/tmp/geoimport-{}", &digest[..16]));
    let target = tempfile::tempdir().unwrap();
    let _ = std::fs::remove_file(&planted);
    std::os::unix::fs::symlink(target.path(), &planted).unwrap();
    let owner_before = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(target.path()).unwrap());
    let refused = user_create(&data, "emma", &[]);
    let _ = std::fs::remove_file(&planted);
    let message = refused.expect_err("a planted socket directory was used");
    assert!(message.contains("not a private directory"), "{message}");
    let owner_after = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(target.path()).unwrap());
    assert_eq!(owner_before, owner_after, "the link's target was handed to the cluster's user");
    stop_cluster(&data);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_superuser_database_url_is_refused_unless_the_operator_insists() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_geoimport"))
        .args(["user", "create", "emma", "--json"])
        .env("DATABASE_URL", admin_url())
        .env("GEOIMPORT_LOG_FORMAT", "text")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(message.contains("superuser") && message.contains("CREATE ROLE"), "{message}");
    // A role of its own works.
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_geoimport"))
        .args(["user", "create", "emma", "--json"])
        .env("DATABASE_URL", &app.db.url)
        .env("GEOIMPORT_LOG_FORMAT", "text")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_embedded_postgres_does_not_inherit_the_servers_secrets() {
    let parent = tempfile::tempdir().unwrap();
    let data = data_dir(parent.path(), false);
    let server = serve_embedded(
        &data,
        &[
            ("GEOIMPORT_SECRET_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="),
            ("GEOIMPORT_METRICS_TOKEN", "a-metrics-token"),
        ],
    )
    .await;
    let pid_file = std::fs::read_to_string(data.join("postgres/postmaster.pid")).unwrap();
    let postmaster = pid_file.lines().next().unwrap().trim();
    let environ = std::fs::read(format!("/proc/{postmaster}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(environ.contains("LC_ALL"), "the environment was read: {environ}");
    for secret in ["GEOIMPORT_SECRET_KEY", "GEOIMPORT_METRICS_TOKEN", "MDEyMzQ1", "a-metrics-token"] {
        assert!(!environ.contains(secret), "{secret} is in PostgreSQL's environment");
    }
    stop_server(server).await;
}

/// The owner of /proc/<pid>/environ: the process's own user, unless the process made itself undumpable,
/// which hands its /proc files to root (so another process of the same user cannot read its memory or
/// environment, where the secret key lives).
fn environ_owner(pid: i32) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/environ")).unwrap().uid()
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_and_worker_processes_are_not_dumpable() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    // Only a process whose user is not root shows the difference: as root, run them as nobody.
    let run_as = nix::unistd::geteuid().is_root().then_some(65534u32);
    let data = tempfile::tempdir().unwrap();
    if let Some(uid) = run_as {
        std::os::unix::fs::chown(data.path(), Some(uid), Some(uid)).unwrap();
    }
    let mut env = app.child_env();
    env.retain(|(k, _)| k != "GEOIMPORT_DATA_DIR");
    env.push(("GEOIMPORT_DATA_DIR".into(), data.path().display().to_string()));
    let command = |args: &[&str]| {
        let mut cmd = std::process::Command::new(geoimport_bin());
        cmd.args(args).env_remove("DATABASE_URL").envs(env.iter().map(|(k, v)| (k, v)));
        if let Some(uid) = run_as {
            std::os::unix::process::CommandExt::uid(&mut cmd, uid);
            std::os::unix::process::CommandExt::gid(&mut cmd, uid);
        }
        cmd
    };
    let user = run_as.unwrap_or_else(|| nix::unistd::geteuid().as_raw());
    let served = ChildProcess::serving(command(&["serve"])).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", served.process.pid())).unwrap();
    assert!(status.lines().any(|l| l.starts_with("Uid:") && l.contains(&user.to_string())), "{status}");
    assert_eq!(environ_owner(served.process.pid()), 0, "serve is dumpable");
    let mut worker = command(&["worker"]);
    worker.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
    let mut worker = worker.spawn().unwrap();
    let log = ChildLog::follow(worker.stderr.take().unwrap());
    let worker = ChildProcess(worker);
    // Its first log line comes after the flag is set (the first thing main does).
    let start = std::time::Instant::now();
    while log.lines().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(30), "the worker logged nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(environ_owner(worker.pid()), 0, "worker is dumpable");
}
