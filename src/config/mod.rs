//! Settings shared by every subcommand. Each one comes from a flag or an environment variable (clap reads
//! both), with the defaults README.md lists. Plain data: the objects built from them live in
//! [`crate::services`].

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

pub mod shown;
mod values;

pub use values::{AllowEntry, SecretKey, parse_allow, parse_allow_entry};

/// Where the database is and where files are staged: what every subcommand needs.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// PostgreSQL (with PostGIS) holding the queue and the users' tables. Without it, a private cluster is
    /// created and run under the data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Staged uploads, work areas and the embedded database live here.
    #[arg(long, env = "GEOIMPORT_DATA_DIR", default_value = "geoimport-data")]
    pub data_dir: PathBuf,

    /// Where uploads (and downloaded URL imports) wait for a worker: `file:///abs/dir`, `s3://bucket/prefix`,
    /// `gs://bucket/prefix` or `az://container/prefix`, with credentials from each cloud's usual variables
    /// (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`...). Unset: `staging/` in the data directory, which only
    /// the processes of this machine can read.
    #[arg(long, env = "GEOIMPORT_STAGING_URL")]
    pub staging_url: Option<String>,

    /// Work even though DATABASE_URL connects as a superuser. Refused by default: the role geoimport works
    /// as owns every user's tables, and should have no power beyond them.
    #[arg(long, env = "GEOIMPORT_ALLOW_SUPERUSER", default_value_t = false)]
    pub allow_superuser: bool,

    /// When started as root, the system user the embedded PostgreSQL runs as (it refuses to run as root).
    #[arg(long, env = "GEOIMPORT_EMBEDDED_PG_USER", default_value = "postgres")]
    pub embedded_pg_user: String,
}

/// Knobs of the HTTP API and the workers.
#[derive(Debug, Clone, Args)]
pub struct RuntimeArgs {
    /// Concurrent import jobs run by this process (0: API only). One user never takes all of them: the
    /// last free one is kept for others.
    #[arg(long, env = "GEOIMPORT_WORKERS", default_value_t = 4)]
    pub workers: usize,

    /// Seconds a worker's claim on a job lasts without renewal; a job whose worker died is taken again once
    /// it lapses.
    #[arg(long, env = "GEOIMPORT_LEASE_SECS", default_value_t = 30)]
    pub lease_secs: u64,

    /// How often idle workers look for jobs when no notification arrives, in milliseconds.
    #[arg(long, env = "GEOIMPORT_POLL_MS", default_value_t = 2000)]
    pub poll_ms: u64,

    /// Attempts before a job that keeps losing its worker fails with 6671.
    #[arg(long, env = "GEOIMPORT_MAX_ATTEMPTS", default_value_t = 3)]
    pub max_attempts: i32,

    /// Longest time one import may run before it fails with 6667, in seconds.
    #[arg(long, env = "GEOIMPORT_JOB_TIMEOUT_SECS", default_value_t = 3600)]
    pub job_timeout_secs: u64,

    /// On SIGTERM/SIGINT, how long running jobs may go on before they are handed back to the queue.
    #[arg(long, env = "GEOIMPORT_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    /// Address ranges URL imports may reach although they are private (comma-separated CIDRs, e.g.
    /// `127.0.0.1/32,10.0.0.0/8`). By default only public addresses are.
    #[arg(long, env = "GEOIMPORT_URL_ALLOW", value_delimiter = ',', value_parser = values::parse_allow)]
    pub url_allow: Vec<ipnet::IpNet>,

    /// Address ranges database connectors may reach although they are private (comma-separated CIDRs, each
    /// best limited to one port, e.g. `127.0.0.1/32:3306,10.0.0.0/8:5432`). By default only public
    /// addresses are: otherwise any user could read the databases of the server's own network. This
    /// server's own database is refused whatever is allowed.
    #[arg(long, env = "GEOIMPORT_CONNECTOR_ALLOW", value_delimiter = ',', value_parser = values::parse_allow_entry)]
    pub connector_allow: Vec<AllowEntry>,

    /// The key that seals connector credentials in the database: base64 of 32 bytes (`openssl rand -base64
    /// 32`). Unset: one is generated and kept in `<data dir>/secret.key`; processes on several machines
    /// must all be given the same key.
    #[arg(long, env = "GEOIMPORT_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<SecretKey>,

    /// Where the generated key is kept when GEOIMPORT_SECRET_KEY is not set (default: `secret.key` in the
    /// data directory). Somewhere else than the data directory keeps it out of that directory's backups.
    #[arg(long, env = "GEOIMPORT_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,

    /// Seconds to wait for a download's server to accept the connection (then 1102), or for a connector's
    /// database to accept it (then 1500).
    #[arg(long, env = "GEOIMPORT_CONNECT_TIMEOUT_SECS", default_value_t = 30)]
    pub connect_timeout_secs: u64,

    /// PEM certificates (an internal CA) trusted beside the system's for https and ftps downloads.
    #[arg(long, env = "GEOIMPORT_URL_CA_FILE")]
    pub url_ca_file: Option<PathBuf>,

    /// Longest a whole download may take (then 1020).
    #[arg(long, env = "GEOIMPORT_DOWNLOAD_TIMEOUT_SECS", default_value_t = 900)]
    pub download_timeout_secs: u64,

    /// Tables one import may create (files and layers beyond it are skipped and named in the warnings).
    #[arg(long, env = "GEOIMPORT_MAX_TABLES_PER_IMPORT", default_value_t = 50)]
    pub max_tables_per_import: usize,

    /// Bytes an archive may unpack to (beyond it the import fails with 6666).
    #[arg(long, env = "GEOIMPORT_MAX_UNPACKED_BYTES", default_value_t = 16 << 30)]
    pub max_unpacked_bytes: u64,

    /// A bearer token `/metrics` asks for (`Authorization: Bearer <token>`). Unset: the metrics are open,
    /// for networks where only the monitoring system reaches the server.
    #[arg(long, env = "GEOIMPORT_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// A bearer token that opens the admin API (`/api/v1/admin/users…`: accounts, keys, limits). Unset: the
    /// admin API does not exist (404).
    #[arg(long, env = "GEOIMPORT_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Address space one GDAL reader process may use, in MiB (0: no limit). GDAL reads every file in a
    /// child process of its own; a read that needs more fails its import with 6666.
    #[arg(long, env = "GEOIMPORT_GDAL_MEMORY_MB", default_value_t = 4096)]
    pub gdal_memory_mb: u64,

    /// The executable that runs GDAL readers (`<it> gdal-read ...`); by default `geoimport-gdal-read`
    /// beside this one.
    #[arg(long, env = "GEOIMPORT_GDAL_READER", hide = true)]
    pub gdal_reader: Option<PathBuf>,

    /// Largest record a reader holds at once, in bytes: a CSV row, or a JSON element (a feature, a row, a
    /// member of the top object). Beyond it a JSON import fails with 6666 and a CSV with 2003 (such a row
    /// is nearly always a quote left open). A worker's memory grows with it: about ten times this per
    /// running import in the worst case.
    #[arg(long, env = "GEOIMPORT_MAX_RECORD_BYTES", default_value_t = 32 << 20)]
    pub max_record_bytes: u64,

    // Connections and uploads (review #3, #6, #8).
    /// Seconds a client has to send a request's headers once it has connected, or once its previous
    /// answer was sent on a kept-alive connection (so this is also the idle timeout). Then the connection
    /// is closed.
    #[arg(long, env = "GEOIMPORT_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,

    /// Connections served at once. When all are taken the server stops accepting until one ends; the
    /// others wait in the kernel's queue.
    #[arg(long, env = "GEOIMPORT_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Longest time the body of one `POST /api/v1/imports` may take to arrive, however steadily its bytes
    /// come; then the upload is cut with 408.
    #[arg(long, env = "GEOIMPORT_UPLOAD_TIMEOUT_SECS", default_value_t = 3600)]
    pub upload_timeout_secs: u64,

    /// Free bytes kept on the data directory's filesystem: below this uploads are refused with 507, before
    /// and while their bytes arrive (0: no reserve).
    #[arg(long, env = "GEOIMPORT_MIN_FREE_BYTES", default_value_t = 1 << 30)]
    pub min_free_bytes: u64,

    // Resumable uploads (tus, `/api/v1/uploads`).
    /// Seconds a resumable upload is kept after it was created or last received bytes; then it is gone
    /// (410) and its bytes are deleted. An upload that became an import is remembered as long.
    #[arg(long, env = "GEOIMPORT_UPLOAD_EXPIRY_SECS", default_value_t = 86400)]
    pub upload_expiry_secs: u64,

    /// Resumable uploads one user may have unfinished at once (neither imported nor expired); more are 429.
    #[arg(long, env = "GEOIMPORT_MAX_UNFINISHED_UPLOADS", default_value_t = 20)]
    pub max_unfinished_uploads: i64,

    /// Hooks for the tests, hidden from `--help`; all off by default.
    #[command(flatten)]
    pub hooks: TestHooks,
}

impl RuntimeArgs {
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs.max(1))
    }
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_ms.max(10))
    }
    pub fn job_timeout(&self) -> Duration {
        Duration::from_secs(self.job_timeout_secs.max(1))
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs.max(1))
    }
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs.max(1))
    }
    pub fn upload_timeout(&self) -> Duration {
        Duration::from_secs(self.upload_timeout_secs.max(1))
    }
    /// The first wait after a failed webhook delivery (each later one is four times longer).
    pub fn webhook_backoff(&self) -> Duration {
        match self.hooks.webhook_backoff_ms {
            0 => Duration::from_secs(10),
            ms => Duration::from_millis(ms),
        }
    }
    pub fn upload_expiry_secs(&self) -> u64 {
        self.upload_expiry_secs.max(1)
    }
}

/// Test hooks: how the tests make a reader crash, a worker pause, a job panic. Never set in production.
#[derive(Debug, Clone, Default, Args)]
pub struct TestHooks {
    /// Test hook: `segv:<file name>` makes GDAL readers of that file crash, `hog:<file name>` makes them
    /// exhaust their memory.
    #[arg(long = "test-gdal-fault", env = "GEOIMPORT_TEST_GDAL_FAULT", hide = true)]
    pub gdal_fault: Option<String>,

    /// Test hook: pause this long after loading and before publishing, so tests can kill a worker in the
    /// middle of an import. Leave at 0.
    #[arg(
        long = "test-hold-before-publish-ms",
        env = "GEOIMPORT_TEST_HOLD_BEFORE_PUBLISH_MS",
        default_value_t = 0,
        hide = true
    )]
    pub hold_before_publish_ms: u64,

    /// Test hook: the reporter waits this long before writing each state, so that a test can see the
    /// completing transaction wait for the states sent before it. Leave at 0.
    #[arg(
        long = "test-slow-state-writes-ms",
        env = "GEOIMPORT_TEST_SLOW_STATE_WRITES_MS",
        default_value_t = 0,
        hide = true
    )]
    pub slow_state_writes_ms: u64,

    /// Test hook: the first wait after a failed webhook delivery, instead of 10 s. Leave at 0.
    #[arg(
        long = "test-webhook-backoff-ms",
        env = "GEOIMPORT_TEST_WEBHOOK_BACKOFF_MS",
        default_value_t = 0,
        hide = true
    )]
    pub webhook_backoff_ms: u64,

    /// Test hook: with a hold before publishing, fail the run once the hold is over.
    #[arg(long = "test-fail-after-hold", env = "GEOIMPORT_TEST_FAIL_AFTER_HOLD", default_value_t = false, hide = true)]
    pub fail_after_hold: bool,

    /// Test hook: the processor time a GDAL reader may use, instead of the job timeout, so that a test can
    /// tell the CPU limit from the wall clock.
    #[arg(long = "test-gdal-cpu-secs", env = "GEOIMPORT_TEST_GDAL_CPU_SECS", hide = true)]
    pub gdal_cpu_secs: Option<u64>,

    /// Test hook: how old an object of the staging store without a live job must be before the janitor
    /// removes it, in seconds (default an hour), so that a test need not wait.
    #[arg(long = "test-orphan-grace-secs", env = "GEOIMPORT_TEST_ORPHAN_GRACE_SECS", hide = true)]
    pub orphan_grace_secs: Option<u64>,

    /// Test hook: panic inside any job whose file has this name, to prove a panic fails only its own job.
    #[arg(long = "test-panic-on-file", env = "GEOIMPORT_TEST_PANIC_ON_FILE", hide = true)]
    pub panic_on_file: Option<String>,
}

/// Defaults given to new users; each user's own row can then be changed.
#[derive(Debug, Clone, Args)]
pub struct UserDefaults {
    /// Largest file a user may import, in bytes.
    #[arg(long, env = "GEOIMPORT_MAX_FILE_SIZE", default_value_t = 1 << 30)]
    pub max_file_size: i64,

    /// Imports of one user that run at once; more wait in the queue.
    #[arg(long, env = "GEOIMPORT_MAX_CONCURRENT_IMPORTS", default_value_t = 3)]
    pub max_concurrent_imports: i32,

    // What a user may leave waiting (review #8).
    /// Bytes of uploaded files a user's unfinished imports may hold together; beyond, uploads are 429.
    #[arg(long, env = "GEOIMPORT_MAX_STAGED_BYTES", default_value_t = 4 << 30)]
    pub max_staged_bytes: i64,

    /// Unfinished imports (uploads, URLs, connectors) a user may have; beyond, new ones are 429.
    #[arg(long, env = "GEOIMPORT_MAX_PENDING_IMPORTS", default_value_t = 100)]
    pub max_pending_imports: i32,
}

/// Everything the server and the workers need, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    /// `GEOIMPORT_STAGING_URL`; None is the data directory's `staging/`.
    pub staging_url: Option<String>,
    pub runtime: RuntimeArgs,
    pub user_defaults: UserDefaults,
}
