//! The rejections report of an import: each value the loaders could not keep as it was (moved to a
//! `_invalid` column, or dropped) and each geometry they changed (repaired, made linear) or could not keep,
//! with where it was and why. Readers collect them as they go ([`Rejections`], bounded: the first
//! [`Rejections::KEEP`] of a table are kept, all are counted); publishing stores them with the import, in the
//! completing transaction, so the report exists exactly when the import's tables do.

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The longest original value a report repeats, in characters: enough to recognise it, never a whole
/// polygon of a million vertices.
pub const VALUE_CHARS: usize = 200;

/// One thing a load could not keep as the source had it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The source row or feature, counting from 1 in the order the source gives them.
    pub row: u64,
    /// The column of the source the value came from (`the_geom` for a feature's geometry).
    pub column: String,
    /// The original value as text, cut to [`VALUE_CHARS`] characters; None when it has no text form.
    pub value: Option<String>,
    pub reason: String,
}

/// The rejections of one table, as a reader collects them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejections {
    /// Every rejection, whether kept or not.
    pub total: u64,
    pub kept: Vec<Rejection>,
}

impl Rejections {
    /// How many rejections of one table are kept with their details.
    pub const KEEP: usize = 1000;

    /// Counts a rejection; its details, the original value and the reason (built only if kept), are kept
    /// while there is room.
    pub fn add(&mut self, row: u64, column: &str, details: impl FnOnce() -> (Option<String>, String)) {
        self.total += 1;
        if self.kept.len() < Self::KEEP {
            let (value, reason) = details();
            self.kept.push(Rejection { row, column: column.to_string(), value: value.as_deref().map(cut), reason });
        }
    }

    /// Room left for details.
    pub fn room(&self) -> usize {
        Self::KEEP - self.kept.len()
    }

    pub fn extend(&mut self, other: Rejections) {
        self.total += other.total;
        let room = self.room();
        self.kept.extend(other.kept.into_iter().take(room));
    }
}

/// `value` cut to [`VALUE_CHARS`] characters, an ellipsis saying it was.
pub fn cut(value: &str) -> String {
    match value.char_indices().nth(VALUE_CHARS) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_string(),
    }
}

/// Stores the rejections of one published table of `import` (in the publishing transaction).
pub async fn store_rejections(
    conn: &mut PgConnection,
    import: Uuid,
    table: &str,
    rejections: &Rejections,
) -> Result<(), sqlx::Error> {
    if rejections.kept.is_empty() {
        return Ok(());
    }
    let k = &rejections.kept;
    sqlx::query(
        "INSERT INTO geoimport.import_rejections (import_id, table_name, row_number, column_name, value, reason) \
         SELECT $1, $2, * FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[])",
    )
    .bind(import)
    .bind(table)
    .bind(k.iter().map(|r| r.row as i64).collect::<Vec<_>>())
    .bind(k.iter().map(|r| r.column.as_str()).collect::<Vec<_>>())
    .bind(k.iter().map(|r| r.value.as_deref()).collect::<Vec<_>>())
    .bind(k.iter().map(|r| r.reason.as_str()).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

/// A stored rejection, as the report lists it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StoredRejection {
    /// The table the row went to.
    pub table_name: String,
    /// The source row or feature, counting from 1.
    pub row: i64,
    pub column: String,
    /// The original value as text, cut to 200 characters (an ellipsis ends a cut value).
    pub value: Option<String>,
    pub reason: String,
}

/// A page of `import`'s stored rejections, in table then row order.
pub async fn list_rejections(
    pool: &PgPool,
    import: Uuid,
    offset: i64,
    limit: i64,
) -> Result<Vec<StoredRejection>, sqlx::Error> {
    sqlx::query_as(
        "SELECT table_name, row_number AS row, column_name AS column, value, reason \
         FROM geoimport.import_rejections WHERE import_id = $1 ORDER BY id LIMIT $2 OFFSET $3",
    )
    .bind(import)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}

/// How many rejections of `import` are stored with their details.
pub async fn count_stored_rejections(pool: &PgPool, import: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM geoimport.import_rejections WHERE import_id = $1")
        .bind(import)
        .fetch_one(pool)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_stop_at_the_limit_and_the_count_goes_on() {
        let mut r = Rejections::default();
        for row in 1..=(Rejections::KEEP as u64 + 5) {
            r.add(row, "a", || (Some("x".into()), "bad".into()));
        }
        assert_eq!(r.total, Rejections::KEEP as u64 + 5);
        assert_eq!(r.kept.len(), Rejections::KEEP);
        assert_eq!(r.kept.last().unwrap().row, Rejections::KEEP as u64);
    }

    #[test]
    fn long_values_are_cut_on_a_character_boundary() {
        let long = "é".repeat(VALUE_CHARS + 10);
        let cut = cut(&long);
        assert_eq!(cut.chars().count(), VALUE_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(super::cut("short"), "short");
    }
}
