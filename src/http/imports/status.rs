//! The status JSON of an import: the reference's fields, names, JSON types and order, plus our extensions
//! `table_names` (every table made), `rows_imported` and `rejections`.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::errors::{ErrorText, error_text};
use crate::queue::{ImportJob, ImportState};

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportStatus {
    pub id: Uuid,
    pub user_id: Uuid,
    /// The table made last, once complete.
    pub table_id: Option<Uuid>,
    /// `file` for uploads.
    pub data_type: String,
    pub table_name: Option<String>,
    /// pending, uploading, unpacking, guessing, importing, complete or failure.
    pub state: String,
    pub error_code: Option<i32>,
    /// Always equal to `id`.
    pub queue_id: Uuid,
    pub tables_created_count: Option<i32>,
    pub synchronization_id: Option<Uuid>,
    pub type_guessing: bool,
    pub quoted_fields_guessing: bool,
    pub content_guessing: bool,
    pub create_visualization: bool,
    /// Always null: geoimport makes tables, not maps.
    pub visualization_id: Option<Uuid>,
    /// A JSON object encoded as a string, as the reference has it.
    pub user_defined_limits: String,
    pub get_error_text: Option<ErrorText>,
    pub display_name: String,
    /// Present only in final states.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    pub original_url: String,
    pub warnings: Option<serde_json::Value>,
    pub is_raster: bool,
    /// Present only when a download answered with an error status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_response_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_response_code_message: Option<String>,
    /// Present only when complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub any_table_raster: Option<bool>,
    /// Present (as null) only when complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub derived_visualization_id: Option<Option<Uuid>>,
    /// Extension: every table this import made, in order.
    pub table_names: Vec<String>,
    /// Extension: rows loaded, once complete.
    pub rows_imported: Option<i64>,
    /// Extension, once complete: how many values and geometries could not be kept as the source had them
    /// (moved to an `_invalid` column, repaired, simplified or dropped). `GET /api/v1/imports/{id}/rejections`
    /// lists them.
    pub rejections: Option<i64>,
    /// Extension, while the import runs: its phase (its state), `bytes_done` and `bytes_total` while it
    /// downloads or unpacks, `rows_done` (and `rows_total` once a reader counted them) while it guesses and
    /// loads, and when that was written (every second while it changes). Absent once the import ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub progress: Option<serde_json::Value>,
}

impl From<ImportJob> for ImportStatus {
    fn from(job: ImportJob) -> Self {
        let complete = job.state == ImportState::Complete;
        let is_final = job.state.is_final();
        ImportStatus {
            id: job.id,
            user_id: job.user_id,
            table_id: job.table_id,
            data_type: job.data_type.as_str().to_string(),
            table_name: job.table_name,
            error_code: job.error_code,
            queue_id: job.id,
            tables_created_count: job.tables_created_count,
            synchronization_id: job.synchronization_id,
            type_guessing: job.type_guessing,
            quoted_fields_guessing: job.quoted_fields_guessing,
            content_guessing: job.content_guessing,
            create_visualization: job.create_visualization,
            visualization_id: None,
            user_defined_limits: job.user_defined_limits,
            get_error_text: job.error_code.map(|c| error_text(c, job.error_detail.as_deref())),
            display_name: job.display_name.unwrap_or_else(|| job.id.to_string()),
            success: is_final.then_some(complete),
            original_url: job.original_url.unwrap_or_default(),
            warnings: job.warnings,
            is_raster: job.is_raster,
            http_response_code: job.http_response_code,
            http_response_code_message: job.http_response_code.map(http_code_message),
            any_table_raster: complete.then_some(job.any_table_raster),
            derived_visualization_id: complete.then_some(None),
            table_names: job.table_names,
            rows_imported: job.rows_imported,
            rejections: job.rejections,
            progress: job.progress.filter(|_| !is_final),
            state: job.state.as_str().to_string(),
        }
    }
}

/// A short explanation of an HTTP status a download returned.
pub fn http_code_message(code: i32) -> String {
    let specific = match code {
        300..=308 => "The server redirected the download more times than allowed, or to a place we do not follow.",
        400 => "The server said the request was malformed (400 Bad Request).",
        401 => "The server asked for credentials (401 Unauthorized).",
        402 => "The server asked for payment (402 Payment Required).",
        403 => "The server refused access (403 Forbidden).",
        404 => "The server has no file at that address (404 Not Found).",
        405 => "The server does not allow downloads of that address (405 Method Not Allowed).",
        407 => "A proxy asked for credentials (407).",
        408 => "The server gave up waiting (408 Request Timeout).",
        409 => "The server reported a conflict (409).",
        410 => "The file was removed from the server (410 Gone).",
        411..=417 => "The server refused the request as sent.",
        429 => "The server is limiting requests; try later (429 Too Many Requests).",
        500 => "The server failed while answering (500 Internal Server Error).",
        501 => "The server cannot answer this kind of request (501).",
        502 => "A gateway in front of the server got a bad answer (502 Bad Gateway).",
        503 => "The server is unavailable for now (503 Service Unavailable).",
        504 => "A gateway in front of the server timed out (504).",
        505 => "The server does not speak our HTTP version (505).",
        511 => "The network asks for authentication (511).",
        _ => "",
    };
    let text = match (specific, code / 100) {
        ("", 4) => "The server refused the request.",
        ("", 5) => "The server failed while answering.",
        ("", _) => "The server answered with an unexpected status.",
        (s, _) => s,
    };
    text.to_string()
}
