//! An import polled until it ends, its `progress` drawn as it goes: bytes while it downloads or copies,
//! then rows against their total once counted.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use super::ClientError;
use super::api::Api;

/// How often the status is asked for (the server writes progress every second).
const POLL: Duration = Duration::from_millis(500);

/// Polls import `id` until it is `complete` or `failure`; its final status.
pub async fn until_final(api: &Api, id: &str, bar: &ProgressBar) -> Result<Value, ClientError> {
    let mut phase = String::new();
    loop {
        let status = api.status(id).await?;
        let state = status["state"].as_str().unwrap_or_default().to_string();
        if state == "complete" || state == "failure" {
            bar.finish_and_clear();
            return Ok(status);
        }
        let progress = &status["progress"];
        if state != phase {
            phase = state.clone();
            bar.set_style(style_for(progress));
            bar.set_position(0);
        }
        bar.set_message(state);
        if let Some(total) = progress["rows_total"].as_u64().or(progress["bytes_total"].as_u64()) {
            bar.set_length(total);
        }
        if let Some(done) = progress["rows_done"].as_u64().or(progress["bytes_done"].as_u64()) {
            bar.set_position(done);
        }
        bar.tick();
        tokio::time::sleep(POLL).await;
    }
}

/// Bytes or rows, as the progress counts them.
fn style_for(progress: &Value) -> ProgressStyle {
    let template = if progress.get("bytes_done").is_some() {
        "{msg:>10} {wide_bar} {bytes}/{total_bytes}"
    } else {
        "{msg:>10} {wide_bar} {human_pos}/{human_len} rows"
    };
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// The style of the upload's bar.
pub fn upload_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg:>10} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}
