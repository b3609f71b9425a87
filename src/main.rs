//! The `geoimport` command: `serve`, `worker`, `user create|list|show|...` and `config`; and the client's
//! `import`, `imports list|show|cancel` and `sync create`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use geoimport::config::{RuntimeArgs, Settings, StoreArgs, UserDefaults};
use geoimport::db::Database;
use geoimport::users;

#[derive(Parser)]
#[command(name = "geoimport", version, about = "Turns files into PostGIS tables; compatible with the CARTO Import API")]
struct Cli {
    /// Log format: json (one object per line) or text.
    #[arg(long, global = true, env = "GEOIMPORT_LOG_FORMAT", default_value = "json")]
    log_format: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API, with workers in the same process.
    Serve(ServeArgs),
    /// Run workers only (to scale out on other machines).
    Worker(ProcessArgs),
    /// Print the settings `serve` would run with (from flags and the environment), keyed by variable;
    /// secrets are shown as set or not. Connects to nothing.
    Config {
        /// Print one JSON object instead of VARIABLE=value lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Import a file or a URL through a geoimport server (a client: GEOIMPORT_URL, GEOIMPORT_API_KEY).
    Import(geoimport::client::cli::ImportArgs),
    /// List, show and cancel your imports on a geoimport server (a client).
    Imports {
        #[command(subcommand)]
        command: geoimport::client::cli::ImportsCommand,
    },
    /// Create sync tables on a geoimport server (a client).
    Sync {
        #[command(subcommand)]
        command: geoimport::client::cli::SyncCommand,
    },
}

/// What `serve` runs with (and `config` shows).
#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "GEOIMPORT_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    #[command(flatten)]
    process: ProcessArgs,
}

/// What a process with workers runs with (`serve` and `worker`).
#[derive(Args)]
struct ProcessArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
    #[command(flatten)]
    defaults: UserDefaults,
}

impl ProcessArgs {
    /// Opens the database, with a pool and a statement limit fit for this many workers; returns it with
    /// the settings.
    async fn open(self) -> anyhow::Result<(Database, Arc<Settings>)> {
        let ProcessArgs { store, runtime, defaults } = self;
        let db = Database::open(&store_options(&store), pool_size(runtime.workers), statement_limit(&runtime)).await?;
        Ok((
            db,
            Arc::new(Settings {
                data_dir: store.data_dir,
                staging_url: store.staging_url,
                runtime,
                user_defaults: defaults,
            }),
        ))
    }
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user with a master API key and print the key.
    Create {
        name: String,
        /// Print only a JSON line: {"id", "username", "api_key"}.
        #[arg(long)]
        json: bool,
        /// Most rows one imported table may have (error 6668 above it). Default: no limit.
        #[arg(long)]
        max_rows: Option<i64>,
        /// Most tables the user may have (error 8002 above it). Default: no limit.
        #[arg(long)]
        table_quota: Option<i32>,
        /// Most bytes the user's tables may take (error 8001 above it). Default: no limit.
        #[arg(long)]
        quota_bytes: Option<i64>,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        defaults: UserDefaults,
    },
    #[command(flatten)]
    Manage(geoimport::admin::cli::AccountCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The client's commands log nothing and end with their own exit status.
    if matches!(cli.command, Command::Import(_) | Command::Imports { .. } | Command::Sync { .. }) {
        let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
        let code = runtime.block_on(async {
            match cli.command {
                Command::Import(args) => geoimport::client::cli::import(args).await,
                Command::Imports { command } => geoimport::client::cli::imports(command).await,
                Command::Sync { command } => geoimport::client::cli::sync(command).await,
                _ => unreachable!("only the client's commands come here"),
            }
        });
        std::process::exit(if code == std::process::ExitCode::SUCCESS { 0 } else { client_code(code) });
    }
    if let Command::Config { json, serve: ServeArgs { bind, process: ProcessArgs { store, runtime, defaults } } } =
        &cli.command
    {
        let shown = geoimport::config::shown::by_variable(&cli.log_format, *bind, store, runtime, defaults);
        if *json {
            println!("{}", serde_json::Value::Object(shown));
        } else {
            for (variable, value) in shown {
                let value = match value {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                };
                println!("{variable}={value}");
            }
        }
        return Ok(());
    }
    // Other processes of the same user (a GDAL reader subverted by a file, say) may not read this one's
    // memory or environment (/proc/<pid>/environ, ptrace): our secrets live there.
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        eprintln!("geoimport: could not make the process non-dumpable: {e}");
    }
    init_logging(&cli.log_format);
    raise_open_file_limit();
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("could not install the TLS crypto provider"))?;
    // glibc gives each thread that allocates an arena of its own, up to 8 per core, and keeps what each one
    // held: with the runtime's and the blocking pool's threads, that is most of the server's resident
    // memory beyond what it uses. Two arenas serve its allocations as fast (they are short and few).
    // SAFETY: mallopt only sets an allocator parameter; called before the runtime starts its threads.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(run(cli.command))
}

/// The number behind a client command's exit status (ExitCode does not tell it).
fn client_code(code: std::process::ExitCode) -> i32 {
    if code == std::process::ExitCode::from(2) { 2 } else { 1 }
}

/// Where the database is, as the settings say.
fn store_options(store: &StoreArgs) -> geoimport::db::StoreOptions {
    geoimport::db::StoreOptions {
        database_url: store.database_url.clone(),
        data_dir: store.data_dir.clone(),
        allow_superuser: store.allow_superuser,
        embedded_pg_user: store.embedded_pg_user.clone(),
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Config { .. } | Command::Import(_) | Command::Imports { .. } | Command::Sync { .. } => {
            unreachable!("handled before the runtime starts")
        }
        Command::Serve(ServeArgs { bind, process }) => {
            let (db, settings) = process.open().await?;
            let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| format!("binding {bind}"))?;
            // The address bound, not the one asked for: with port 0 the log is where the port is told.
            let bound = listener.local_addr().context("reading the bound address")?;
            tracing::info!(bind = %bound, workers = settings.runtime.workers, "geoimport serving");
            let shutdown = on_signal();
            let result = geoimport::server::serve(listener, db.pool.clone(), settings, shutdown).await;
            db.close().await;
            result.context("serving HTTP")
        }
        Command::Worker(process) => {
            let (db, settings) = process.open().await?;
            let result = geoimport::server::work(db.pool.clone(), settings, on_signal()).await;
            db.close().await;
            result.context("running the workers")
        }
        Command::User {
            command: UserCommand::Create { name, json, max_rows, table_quota, quota_bytes, store, defaults },
        } => {
            let db = Database::open(&store_options(&store), 2, None).await?;
            let extra = users::ExtraLimits { max_rows_per_table: max_rows, table_quota, quota_in_bytes: quota_bytes };
            let created =
                users::create_user(&db.pool, &name, &geoimport::services::user_limits(&defaults, extra)).await;
            db.close().await;
            let user = created?;
            if json {
                println!("{}", serde_json::to_string(&user)?);
            } else {
                println!("created user {} ({})", user.username, user.id);
                println!("api key: {}", user.api_key);
                println!("{}", serde_json::to_string(&user)?);
            }
            Ok(())
        }
        Command::User { command: UserCommand::Manage(command) } => {
            let common = command.common().clone();
            let db = Database::open(&store_options(&common.store), 2, None).await?;
            let staging = geoimport::source::staging::StagingArea::open(
                &common.store.data_dir,
                common.store.staging_url.as_deref(),
            )?;
            let done = command.run(&db.pool, &staging).await;
            db.close().await;
            let done = done?;
            let text = if common.json { done.to_string() } else { serde_json::to_string_pretty(&done)? };
            println!("{text}");
            Ok(())
        }
    }
}

/// No statement may outlive the longest a job may run (a minute's slack for the job's own ending).
fn statement_limit(runtime: &RuntimeArgs) -> Option<std::time::Duration> {
    Some(runtime.job_timeout() + std::time::Duration::from_secs(60))
}

/// Raises the soft limit of open files to the hard limit. The usual soft limit (1024) is the default
/// connection cap on its own, before the database pool, staged files and GDAL pipes; a process that runs
/// out of descriptors can no longer accept connections nor open database sockets.
fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::debug!(from = soft, to = hard, "raised the open files limit"),
            Err(e) => tracing::warn!(error = %e, soft, hard, "could not raise the open files limit"),
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the open files limit"),
    }
}

/// Connections: a few per job (the load, the parallel index builds, the reporter) plus the API's.
fn pool_size(workers: usize) -> u32 {
    (10 + workers * 4) as u32
}

/// A token cancelled at the first SIGTERM or SIGINT.
fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let fire = token.clone();
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("signal received: shutting down");
        fire.cancel();
    });
    token
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if format == "text" {
        builder.init();
    } else {
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).init();
    }
}
