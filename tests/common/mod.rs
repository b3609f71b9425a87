//! Test harness: every test gets its own PostgreSQL database (dropped when the test ends), its own data
//! directory, and a real server on a free port, talked to over HTTP.
//!
//! The admin connection comes from TEST_DATABASE_URL (default: the local cluster as `postgres`).

#![allow(dead_code)]

pub mod attacks;
pub mod child_server;
pub mod fixture;
pub mod logs;
pub mod mysql;
pub mod pg_proxy;
pub mod raw_http;
pub mod source_pg;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use geoimport::config::{RuntimeArgs, Settings, UserDefaults};
use serde_json::Value;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

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

/// A reqwest client (with the TLS provider reqwest needs installed first).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn url_for(db: &str) -> String {
    let admin = admin_url();
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b.to_string(), format!("?{q}")),
        None => (admin.clone(), String::new()),
    };
    let base = base.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(base);
    format!("{base}/{db}{query}")
}

/// A database of this test's own, dropped (with any connection still open) when the test ends. A server
/// works in it as a role of the test's own, with no privilege beyond its database (as in production: the
/// server refuses a superuser).
pub struct TestDb {
    pub name: String,
    pub url: String,
    /// The role that owns the database, dropped with it.
    role: Option<String>,
}

impl TestDb {
    /// A database the admin owns, without PostGIS (for tests of the setup itself).
    pub async fn create() -> TestDb {
        let name = format!("gi_test_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url()).await.expect("connect to the test PostgreSQL");
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.expect("create db");
        admin.close().await.ok();
        TestDb { url: url_for(&name), name, role: None }
    }

    /// A database owned by a role of its own (no superuser), with PostGIS created by the admin: what an
    /// operator gives geoimport.
    pub async fn create_for_app() -> TestDb {
        let name = format!("gi_test_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url()).await.expect("connect to the test PostgreSQL");
        let password = Uuid::new_v4().simple().to_string();
        for stmt in
            [format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'"), format!("CREATE DATABASE {name} OWNER {name}")]
        {
            sqlx::query(AssertSqlSafe(stmt)).execute(&mut admin).await.expect("create the role and database");
        }
        admin.close().await.ok();
        let mut conn = PgConnection::connect(&url_for(&name)).await.expect("connect to the new database");
        sqlx::query("CREATE EXTENSION postgis").execute(&mut conn).await.expect("create PostGIS");
        conn.close().await.ok();
        let mut url = url::Url::parse(&url_for(&name)).expect("TEST_DATABASE_URL is a URL");
        url.set_username(&name).unwrap();
        url.set_password(Some(&password)).unwrap();
        TestDb { url: url.to_string(), name: name.clone(), role: Some(name) }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (name, role) = (self.name.clone(), self.role.clone());
        // Drop runs outside any runtime we may block; a thread of its own does the async work.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&admin_url()).await {
                    let _ = sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                        .execute(&mut admin)
                        .await;
                    if let Some(role) = role {
                        let _ =
                            sqlx::query(AssertSqlSafe(format!("DROP ROLE IF EXISTS {role}"))).execute(&mut admin).await;
                    }
                }
            });
        })
        .join();
    }
}

pub fn runtime_args() -> RuntimeArgs {
    RuntimeArgs {
        workers: 2,
        lease_secs: 30,
        poll_ms: 200,
        max_attempts: 3,
        job_timeout_secs: 600,
        shutdown_grace_secs: 5,
        test_hold_before_publish_ms: 0,
        test_fail_after_hold: false,
        test_panic_on_file: None,
        // The server under test runs in this test process: GDAL children are the real binary.
        gdal_reader: Some(geoimport_bin().into()),
        gdal_memory_mb: 4096,
        test_gdal_fault: None,
        metrics_token: None,
        url_allow: vec![],
        connector_allow: vec![],
        secret_key: None,
        secret_key_file: None,
        connect_timeout_secs: 5,
        max_tables_per_import: 50,
        max_unpacked_bytes: 16 << 30,
        download_timeout_secs: 60,
        max_record_bytes: 32 << 20,
        header_timeout_secs: 10,
        max_connections: 1024,
        upload_timeout_secs: 3600,
        // Tests share one disk: no reserve unless a test asks for one.
        min_free_bytes: 0,
    }
}

/// Lets connectors reach this machine's databases (private addresses are refused by default).
pub fn allow_local_connectors(settings: &mut Settings) {
    settings.runtime.connector_allow = vec!["127.0.0.1/32".parse().unwrap()];
}

pub fn user_defaults() -> UserDefaults {
    UserDefaults {
        max_file_size: 1 << 30,
        max_concurrent_imports: 3,
        max_staged_bytes: 4 << 30,
        max_pending_imports: 100,
    }
}

pub struct TestUser {
    pub id: Uuid,
    pub name: String,
    pub key: String,
}

/// A running server (API and workers in this process) on its own database.
pub struct TestApp {
    pub base: String,
    pub pool: PgPool,
    pub data_dir: PathBuf,
    pub client: reqwest::Client,
    pub settings: Arc<Settings>,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _data: tempfile::TempDir,
    pub db: TestDb,
}

impl TestApp {
    pub async fn start() -> TestApp {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
        let db = TestDb::create_for_app().await;
        Self::start_on(db, configure).await
    }

    /// Starts a server on an existing database (to restart one, or to run several).
    pub async fn start_on(db: TestDb, configure: impl FnOnce(&mut Settings)) -> TestApp {
        let data = tempfile::tempdir().unwrap();
        let mut settings =
            Settings { data_dir: data.path().to_path_buf(), runtime: runtime_args(), user_defaults: user_defaults() };
        configure(&mut settings);
        let options: sqlx::postgres::PgConnectOptions = db.url.parse().expect("a PostgreSQL URL");
        let pool =
            geoimport::db::connect(options, 20, Some(std::time::Duration::from_secs(600))).await.expect("connect");
        geoimport::db::prepare(&pool).await.expect("migrations");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let settings = Arc::new(settings);
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(geoimport::server::serve(listener, pool.clone(), settings.clone(), shutdown.clone()));
        let client = http_client();
        TestApp {
            base,
            pool,
            data_dir: settings.data_dir.clone(),
            client,
            settings,
            shutdown,
            server: Some(server),
            _data: data,
            db,
        }
    }

    /// Stops the server (as SIGTERM would) and waits for it to drain.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    pub async fn create_user(&self, name: &str) -> TestUser {
        self.create_user_with(name, geoimport::users::ExtraLimits::default()).await
    }

    pub async fn create_user_with(&self, name: &str, extra: geoimport::users::ExtraLimits) -> TestUser {
        let u = geoimport::users::create_user(&self.pool, name, &self.settings.user_defaults, &extra).await.unwrap();
        TestUser { id: u.id, name: u.username, key: u.api_key }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `curl -F file=@<name> .../api/v1/imports/?api_key=KEY&<query>`
    pub async fn upload(
        &self,
        user: &TestUser,
        file_name: &str,
        bytes: impl Into<Vec<u8>>,
        query: &str,
    ) -> reqwest::Response {
        let part = reqwest::multipart::Part::bytes(bytes.into()).file_name(file_name.to_string());
        let form = reqwest::multipart::Form::new().part("file", part);
        let sep = if query.is_empty() { "" } else { "&" };
        self.client
            .post(self.url(&format!("/api/v1/imports/?api_key={}{sep}{query}", user.key)))
            .multipart(form)
            .send()
            .await
            .expect("upload request")
    }

    /// Uploads and returns the queued import's id (asserting the 200 answer).
    pub async fn import(&self, user: &TestUser, file_name: &str, bytes: impl Into<Vec<u8>>, query: &str) -> Uuid {
        let resp = self.upload(user, file_name, bytes, query).await;
        assert_eq!(resp.status(), 200, "upload refused: {}", resp.text().await.unwrap_or_default());
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["success"], true);
        Uuid::parse_str(body["item_queue_id"].as_str().unwrap()).unwrap()
    }

    /// `curl -H "Content-Type: application/json" -d '<body>' .../api/v1/imports/?api_key=KEY`
    pub async fn post_import_json(&self, user: &TestUser, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/api/v1/imports/?api_key={}", user.key)))
            .json(body)
            .send()
            .await
            .expect("import request")
    }

    /// Queues an import described by a JSON body and waits for its final status.
    pub async fn import_json(&self, user: &TestUser, body: &Value) -> Value {
        let resp = self.post_import_json(user, body).await;
        assert_eq!(resp.status(), 200, "refused: {}", resp.text().await.unwrap_or_default());
        let id = resp.json::<Value>().await.unwrap()["item_queue_id"].as_str().unwrap().parse().unwrap();
        self.wait_final(user, id).await
    }

    /// Like [`import_json`], asserting the import completed.
    pub async fn import_json_ok(&self, user: &TestUser, body: &Value) -> Value {
        let status = self.import_json(user, body).await;
        assert_eq!(status["state"], "complete", "import failed: {status:#}");
        status
    }

    pub async fn post_url(&self, user: &TestUser, url: &str) -> reqwest::Response {
        self.post_import_json(user, &serde_json::json!({ "url": url })).await
    }

    pub async fn import_url(&self, user: &TestUser, url: &str) -> Value {
        self.import_json(user, &serde_json::json!({ "url": url })).await
    }

    /// GET `path` as `user`, the body as JSON.
    pub async fn get_json(&self, user: &TestUser, path: &str) -> Value {
        let sep = if path.contains('?') { '&' } else { '?' };
        let resp = self.client.get(self.url(&format!("{path}{sep}api_key={}", user.key))).send().await.unwrap();
        resp.json().await.unwrap()
    }

    pub async fn status(&self, user: &TestUser, id: Uuid) -> (u16, Value) {
        let resp =
            self.client.get(self.url(&format!("/api/v1/imports/{id}?api_key={}", user.key))).send().await.unwrap();
        let code = resp.status().as_u16();
        (code, resp.json().await.unwrap_or(Value::Null))
    }

    /// Polls the status until it is complete or failure.
    pub async fn wait_final(&self, user: &TestUser, id: Uuid) -> Value {
        wait_final_at(&self.client, &self.base, user, id, Duration::from_secs(60)).await
    }

    /// Uploads, waits, and returns the final status.
    pub async fn import_and_wait(
        &self,
        user: &TestUser,
        file_name: &str,
        bytes: impl Into<Vec<u8>>,
        query: &str,
    ) -> Value {
        let id = self.import(user, file_name, bytes, query).await;
        self.wait_final(user, id).await
    }

    /// Like [`import_and_wait`], asserting the import completed.
    pub async fn import_ok(&self, user: &TestUser, file_name: &str, bytes: impl Into<Vec<u8>>, query: &str) -> Value {
        let status = self.import_and_wait(user, file_name, bytes, query).await;
        assert_eq!(status["state"], "complete", "import failed: {status:#}");
        status
    }

    /// The columns of a user table, as (name, type).
    pub async fn columns(&self, schema: &str, table: &str) -> Vec<(String, String)> {
        sqlx::query_as(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        )
        .bind(schema)
        .bind(table)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    pub async fn column_type(&self, schema: &str, table: &str, column: &str) -> String {
        self.columns(schema, table)
            .await
            .into_iter()
            .find(|(n, _)| n == column)
            .unwrap_or_else(|| panic!("no column {column} in {schema}.{table}"))
            .1
    }

    pub async fn tables_of(&self, schema: &str) -> Vec<String> {
        sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY 1")
            .bind(schema)
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }

    pub async fn staging_tables(&self) -> Vec<String> {
        self.tables_of("geoimport_staging").await
    }

    /// Sets one of a user's limits (a column of `geoimport.users`) directly in the database.
    pub async fn set_limit(&self, user: &TestUser, column: &str, value: i64) {
        sqlx::query(AssertSqlSafe(format!("UPDATE geoimport.users SET {column} = $2 WHERE id = $1")))
            .bind(user.id)
            .bind(value)
            .execute(&self.pool)
            .await
            .unwrap();
    }

    /// Runs a query returning one text value per row (cast in SQL as needed).
    pub async fn texts(&self, sql: &str) -> Vec<Option<String>> {
        sqlx::query_scalar(AssertSqlSafe(sql.to_string())).fetch_all(&self.pool).await.unwrap()
    }

    /// Runs a query returning one number (any numeric type).
    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT ({sql})::bigint"))).fetch_one(&self.pool).await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn wait_final_at(client: &reqwest::Client, base: &str, user: &TestUser, id: Uuid, limit: Duration) -> Value {
    let start = Instant::now();
    loop {
        let resp = client.get(format!("{base}/api/v1/imports/{id}?api_key={}", user.key)).send().await;
        if let Ok(resp) = resp
            && resp.status() == 200
        {
            let status: Value = resp.json().await.unwrap();
            let state = status["state"].as_str().unwrap_or("");
            if state == "complete" || state == "failure" {
                return status;
            }
        }
        assert!(start.elapsed() < limit, "import {id} did not finish within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls the job row directly until `predicate` holds for its state.
pub async fn wait_for_state(pool: &PgPool, id: Uuid, want: &[&str], limit: Duration) -> String {
    let start = Instant::now();
    loop {
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM geoimport.imports WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await
            .unwrap();
        if let Some(s) = state
            && want.contains(&s.as_str())
        {
            return s;
        }
        assert!(start.elapsed() < limit, "import {id} never reached {want:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A CSV with lat/lon columns, as in the reference's quickstart.
pub fn prism_tour_csv() -> &'static str {
    "name,latitude,longitude,visitors,opened,rating,open_now\n\
     Prado,40.4138,-3.6921,3200000,1819-11-19,4.8,true\n\
     Reina Sofia,40.4079,-3.6946,1600000,1992-09-10,4.6,true\n\
     Thyssen,40.4160,-3.6949,900000,1992-10-08,4.7,false\n\
     Sorolla,40.4355,-3.6925,,1932-06-11,4.5,\n"
}

impl TestApp {
    /// Runs an extra in-process worker pool on this app's database, with its own settings.
    pub fn spawn_workers(&self, configure: impl FnOnce(&mut Settings)) -> WorkerHandle {
        let mut settings = (*self.settings).clone();
        settings.runtime.workers = 2;
        configure(&mut settings);
        let token = CancellationToken::new();
        let work = geoimport::server::work(self.pool.clone(), Arc::new(settings), token.clone());
        let task = tokio::spawn(async move { work.await.expect("the workers start") });
        WorkerHandle { token, task: Some(task) }
    }

    /// Environment for a `geoimport` child process on this app's database and data directory.
    pub fn child_env(&self) -> Vec<(String, String)> {
        vec![
            ("DATABASE_URL".into(), self.db.url.clone()),
            ("GEOIMPORT_DATA_DIR".into(), self.data_dir.display().to_string()),
            ("GEOIMPORT_LOG_FORMAT".into(), "text".into()),
            ("GEOIMPORT_POLL_MS".into(), "200".into()),
        ]
    }

    pub async fn job_row(&self, id: Uuid) -> (String, i32, Option<String>) {
        sqlx::query_as("SELECT state, attempts, lease_owner FROM geoimport.imports WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

pub struct WorkerHandle {
    token: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl WorkerHandle {
    pub async fn stop(mut self) {
        self.token.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.token.cancel();
    }
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

/// A zip of `(name in the archive, bytes)` entries.
pub fn zip_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in entries {
            zip.start_file(*name, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
    }
    buf.into_inner()
}

/// Every file under `dir` (ending in any of `extensions`, case-insensitive) as zip entries named by their
/// path relative to `dir`.
pub fn files_under(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

pub fn zip_dir(dir: &std::path::Path) -> Vec<u8> {
    let files = files_under(dir);
    let entries: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    zip_of(&entries)
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
