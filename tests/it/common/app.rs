//! A real server on a free port with a database of its own, its users, and the helpers that import through
//! it and wait for the outcome.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use geoimport::config::Settings;
use serde_json::Value;
use sqlx::{AssertSqlSafe, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::*;

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
        let mut settings = Settings {
            data_dir: data.path().to_path_buf(),
            staging_url: None,
            runtime: runtime_args(),
            user_defaults: user_defaults(),
        };
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
        let limits = geoimport::services::user_limits(&self.settings.user_defaults, extra);
        let u = geoimport::users::create_user(&self.pool, name, &limits).await.unwrap();
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

    /// Makes job `id` look claimed by a worker that died: in `state`, at its `attempts`th attempt, its
    /// lease lapsed.
    pub async fn abandon(&self, id: Uuid, state: &str, attempts: i32) {
        sqlx::query(
            "UPDATE geoimport.imports SET state = $2, attempts = $3, lease_owner = 'ghost', \
             lease_expires_at = now() - interval '1 second' WHERE id = $1",
        )
        .bind(id)
        .bind(state)
        .bind(attempts)
        .execute(&self.pool)
        .await
        .unwrap();
    }

    /// Makes job `id` due only in an hour: no worker takes it meanwhile.
    pub async fn postpone(&self, id: Uuid) {
        sqlx::query("UPDATE geoimport.imports SET run_after = now() + interval '1 hour' WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .unwrap();
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
