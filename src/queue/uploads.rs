//! Resumable uploads (`geoimport.uploads`) and their pieces: one statement, or one short transaction, per
//! step of an upload's life. The offset moves only in [`record_segment`], under a compare-and-set on the
//! offset the piece started from, so that two PATCHes racing on one upload (from one client, or through
//! two API nodes) cannot both be counted: no lock is held while bytes arrive.

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// An upload as its owner sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Upload {
    pub id: Uuid,
    pub user_id: Uuid,
    pub file_name: String,
    pub upload_length: i64,
    pub upload_offset: i64,
    pub metadata: Option<String>,
    /// The import it became, once it did.
    pub import_id: Option<Uuid>,
    pub expires_at: OffsetDateTime,
    /// Whether `expires_at` has passed, by the database's clock (every API node's answer is the same).
    pub expired: bool,
}

/// A new upload's row.
pub struct NewUpload<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub file_name: &'a str,
    pub upload_length: i64,
    pub metadata: Option<&'a str>,
    pub expiry_secs: u64,
}

/// A piece of an upload: its object's name (under the upload's prefix) and its size.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Segment {
    pub object_name: String,
    pub byte_count: i64,
}

const UPLOAD_COLUMNS: &str = "id, user_id, file_name, upload_length, upload_offset, metadata, import_id, \
                              expires_at, expires_at <= now() AS expired";

/// Inserts a new upload; returns when it expires.
pub async fn insert_upload(conn: &mut PgConnection, upload: &NewUpload<'_>) -> Result<OffsetDateTime, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO geoimport.uploads (id, user_id, file_name, upload_length, metadata, expires_at) \
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6)) RETURNING expires_at",
    )
    .bind(upload.id)
    .bind(upload.user_id)
    .bind(upload.file_name)
    .bind(upload.upload_length)
    .bind(upload.metadata)
    .bind(upload.expiry_secs as f64)
    .fetch_one(conn)
    .await
}

/// The user's upload `id`; None when there is none (or it is another user's).
pub async fn find_upload(pool: &PgPool, user_id: Uuid, id: Uuid) -> Result<Option<Upload>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {UPLOAD_COLUMNS} FROM geoimport.uploads WHERE id = $1 AND user_id = $2"
    )))
    .bind(id)
    .bind(user_id)
    .fetch_optional(pool)
    .await
}

/// The user's uploads that have neither become an import nor expired.
pub async fn unfinished_uploads(conn: &mut PgConnection, user_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM geoimport.uploads WHERE user_id = $1 AND import_id IS NULL AND expires_at > now()",
    )
    .bind(user_id)
    .fetch_one(conn)
    .await
}

/// Counts the piece `object_name` of `byte_count` bytes that starts at `start`, and pushes the expiry
/// `expiry_secs` past now, if the upload is still there, still unimported, and its offset still `start`.
/// Returns the new offset and expiry, or None when the piece was not counted (the caller deletes its
/// object).
pub async fn record_segment(
    pool: &PgPool,
    id: Uuid,
    start: i64,
    byte_count: i64,
    object_name: &str,
    expiry_secs: u64,
) -> Result<Option<(i64, OffsetDateTime)>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let moved: Option<(i64, OffsetDateTime)> = sqlx::query_as(
        "UPDATE geoimport.uploads SET upload_offset = upload_offset + $3, \
         expires_at = now() + make_interval(secs => $4) \
         WHERE id = $1 AND upload_offset = $2 AND import_id IS NULL AND upload_offset + $3 <= upload_length \
         RETURNING upload_offset, expires_at",
    )
    .bind(id)
    .bind(start)
    .bind(byte_count)
    .bind(expiry_secs as f64)
    .fetch_optional(&mut *tx)
    .await?;
    if moved.is_none() {
        return Ok(None);
    }
    sqlx::query(
        "INSERT INTO geoimport.upload_segments (upload_id, start_offset, byte_count, object_name) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(start)
    .bind(byte_count)
    .bind(object_name)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(moved)
}

/// The counted pieces of upload `id`, in the order of their bytes.
pub async fn upload_segments(pool: &PgPool, id: Uuid) -> Result<Vec<Segment>, sqlx::Error> {
    sqlx::query_as(
        "SELECT object_name, byte_count FROM geoimport.upload_segments WHERE upload_id = $1 ORDER BY start_offset",
    )
    .bind(id)
    .fetch_all(pool)
    .await
}

/// Deletes the user's upload `id` (its pieces' rows go with it); false when there was none.
pub async fn delete_upload(pool: &PgPool, user_id: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM geoimport.uploads WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// In the transaction that queues import `import_id`: marks the user's finished upload `id` as that
/// import's, forgets its pieces (the import has its own copy), and keeps the row `expiry_secs` more so
/// that a second import of it is told which import took it. False when the upload is not there, not
/// finished, or already taken (a racing request waits for the first to commit, then gets false).
pub async fn take_upload(
    conn: &mut PgConnection,
    user_id: Uuid,
    id: Uuid,
    import_id: Uuid,
    expiry_secs: u64,
) -> Result<bool, sqlx::Error> {
    let taken = sqlx::query(
        "UPDATE geoimport.uploads SET import_id = $3, expires_at = now() + make_interval(secs => $4) \
         WHERE id = $1 AND user_id = $2 AND import_id IS NULL AND upload_offset = upload_length",
    )
    .bind(id)
    .bind(user_id)
    .bind(import_id)
    .bind(expiry_secs as f64)
    .execute(&mut *conn)
    .await?;
    if taken.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM geoimport.upload_segments WHERE upload_id = $1").bind(id).execute(&mut *conn).await?;
    Ok(true)
}

/// Deletes every expired upload; returns their ids (the janitor then removes their objects).
pub async fn delete_expired_uploads(pool: &PgPool) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("DELETE FROM geoimport.uploads WHERE expires_at <= now() RETURNING id").fetch_all(pool).await
}

/// Which of `ids` name no upload (their objects are orphans).
pub async fn missing_uploads_among(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar(
        "SELECT t.id FROM unnest($1::uuid[]) AS t(id) LEFT JOIN geoimport.uploads u ON u.id = t.id \
         WHERE u.id IS NULL",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
}

/// Every upload of the user (their objects are to be removed with the account).
pub async fn uploads_of_user(pool: &PgPool, user_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM geoimport.uploads WHERE user_id = $1").bind(user_id).fetch_all(pool).await
}
