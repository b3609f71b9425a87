//! The client's commands. Exit status: 0 when the import completed (or, without `--wait`, was queued), 1
//! when it failed or the server refused (the code and explanation on stderr), 2 on usage errors (clap's
//! own, and a file that is not there).

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget};
use serde_json::Value;

use super::ClientError;
use super::api::Api;
use super::{follow, send};

/// Which server, with which key.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The geoimport server.
    #[arg(long, env = "GEOIMPORT_URL", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Your API key (sent with HTTP Basic, never in a URL).
    #[arg(long, env = "GEOIMPORT_API_KEY", hide_env_values = true)]
    pub api_key: String,
}

/// `geoimport import FILE|URL`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A file to upload, or an http(s) or ftp(s) URL for the server to download.
    pub source: String,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Wait until the import ends, drawing its progress; exit 1 if it fails.
    #[arg(long)]
    pub wait: bool,
    /// Print the result as one JSON line (the final status with --wait, else the server's answer).
    #[arg(long)]
    pub json: bool,
    /// An import parameter, as the API takes it (`-p type_guessing=false -p collision_strategy=overwrite`).
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE", value_parser = key_value)]
    pub params: Vec<(String, String)>,
    /// Files larger than this many bytes go as resumable uploads (tus), in pieces retried after a broken link.
    #[arg(long, default_value_t = 64 << 20)]
    pub resumable_above: u64,
}

#[derive(Debug, Subcommand)]
pub enum ImportsCommand {
    /// Your imports under way (and those of the last day), newest first.
    List {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long)]
        json: bool,
    },
    /// One import's status (JSON).
    Show {
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Cancel an unfinished import.
    Cancel {
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Create a sync table: the URL is imported now and again every interval.
    Create {
        url: String,
        /// Seconds between runs (at least 900, as the reference's).
        #[arg(long)]
        interval: u64,
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long)]
        json: bool,
    },
}

fn key_value(raw: &str) -> Result<(String, String), String> {
    let (key, value) = raw.split_once('=').ok_or_else(|| format!("'{raw}' is not KEY=VALUE"))?;
    Ok((key.trim().to_string(), value.to_string()))
}

/// Runs `geoimport import`.
pub async fn import(args: ImportArgs) -> ExitCode {
    let is_url = ["http://", "https://", "ftp://", "ftps://"].iter().any(|s| args.source.starts_with(s));
    if !is_url && !Path::new(&args.source).is_file() {
        eprintln!("geoimport: {} is not a file (nor an http, https, ftp or ftps URL)", args.source);
        return ExitCode::from(2);
    }
    let outcome = async {
        let api = Api::new(&args.server.server, &args.server.api_key)?;
        let bar = bar(args.json);
        let id = match is_url {
            true => api.import_url(&args.source, &args.params).await?,
            false => {
                bar.set_style(follow::upload_style());
                bar.set_message("sending");
                send::send_file(&api, Path::new(&args.source), &args.params, args.resumable_above, &bar).await?
            }
        };
        if !args.wait {
            bar.finish_and_clear();
            return Ok((id.clone(), serde_json::json!({ "item_queue_id": id, "success": true })));
        }
        Ok((id.clone(), follow::until_final(&api, &id, &bar).await?))
    }
    .await;
    match outcome {
        Ok((id, status)) => ended(&id, &status, args.wait, args.json),
        Err(e) => refused(e),
    }
}

/// Prints how an import ended (or that it was queued); its exit status.
fn ended(id: &str, status: &Value, waited: bool, json: bool) -> ExitCode {
    let failed = status["state"] == "failure";
    if json {
        println!("{status}");
    } else if !waited {
        println!("{id}");
    } else if !failed {
        let tables = status["table_names"].as_array().map(|t| t.len()).unwrap_or(0);
        println!(
            "complete: {} ({} table{}, {} rows) import {id}",
            status["table_name"].as_str().unwrap_or_default(),
            tables,
            if tables == 1 { "" } else { "s" },
            status["rows_imported"]
        );
    }
    if failed {
        let text = &status["get_error_text"];
        eprintln!(
            "geoimport: import {id} failed with {}: {}: {}",
            status["error_code"],
            text["title"].as_str().unwrap_or_default(),
            text["what_about"].as_str().unwrap_or_default()
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn refused(e: ClientError) -> ExitCode {
    eprintln!("geoimport: {e}");
    ExitCode::from(1)
}

/// A bar on stderr (drawn only on a terminal), hidden when the output is JSON for a program.
fn bar(json: bool) -> ProgressBar {
    match json {
        true => ProgressBar::hidden(),
        false => ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr()),
    }
}

/// Runs `geoimport imports ...`.
pub async fn imports(command: ImportsCommand) -> ExitCode {
    let shown = async {
        match command {
            ImportsCommand::List { server, json } => {
                let api = Api::new(&server.server, &server.api_key)?;
                let listed = api.list().await?;
                if json {
                    return Ok(listed.to_string());
                }
                // The list names the imports under way; each line shows its state and file.
                let mut lines = Vec::new();
                for id in listed["imports"].as_array().cloned().unwrap_or_default() {
                    let id = id.as_str().unwrap_or_default();
                    let status = api.status(id).await?;
                    let state = status["state"].as_str().unwrap_or_default();
                    lines.push(format!("{id}  {state:<10} {}", status["display_name"].as_str().unwrap_or_default()));
                }
                Ok(lines.join("\n"))
            }
            ImportsCommand::Show { server, id } => {
                Ok(Api::new(&server.server, &server.api_key)?.status(&id).await?.to_string())
            }
            ImportsCommand::Cancel { server, id } => {
                Ok(Api::new(&server.server, &server.api_key)?.cancel(&id).await?.to_string())
            }
        }
    }
    .await;
    match shown {
        Ok(text) if text.is_empty() => ExitCode::SUCCESS,
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => refused(e),
    }
}

/// Runs `geoimport sync ...`.
pub async fn sync(command: SyncCommand) -> ExitCode {
    let SyncCommand::Create { url, interval, server, json } = command;
    let created = async { Api::new(&server.server, &server.api_key)?.create_sync(&url, interval).await }.await;
    match created {
        Ok(sync) if json => println!("{sync}"),
        Ok(sync) => println!("{}", sync["id"].as_str().unwrap_or_default()),
        Err(e) => return refused(e),
    }
    ExitCode::SUCCESS
}
