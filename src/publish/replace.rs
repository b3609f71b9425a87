//! Replacing a published table with a newly loaded one (sync runs, and `collision_strategy=overwrite`),
//! inside the publishing transaction. Readers see the old table until the transaction commits and the new
//! one after, never a missing or half-loaded table: the swap takes the table's lock, and PostgreSQL
//! resolves a waiting query's table name again once it gets the lock.
//!
//! What users attach to a table survives the swap: its name, its grants, its owner, and the indexes they
//! added (recreated on the new data when its columns allow; otherwise named in the warnings).
//!
//! An index is recreated from what it is made of (its method, its columns, whether it is unique), in a
//! statement we write, never by replaying its stored definition: whoever may create indexes on a user's
//! table could otherwise have an expression of theirs run with this server's authority at the next swap.
//! Indexes on expressions, partial ones and ones with non-default operator classes are not recreated.

use sqlx::{AssertSqlSafe, PgConnection};

use super::schema::move_table;
use crate::db::quote_ident;
use crate::errors::{ImportError, codes};
use crate::load::LoadedLayer;

/// Replaces `schema.name` with the layer's staging table. Returns the names of user indexes that could not
/// be recreated on the new data.
pub async fn replace_table(
    conn: &mut PgConnection,
    schema: &str,
    name: &str,
    layer: &LoadedLayer,
) -> Result<Vec<String>, ImportError> {
    let qualified = format!("{}.{}", quote_ident(schema), quote_ident(name));
    let grants: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END, a.privilege_type, a.is_grantable \
         FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee \
         WHERE c.oid = $1::regclass AND a.grantee <> c.relowner",
    )
    .bind(&qualified)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let owner: String =
        sqlx::query_scalar("SELECT quote_ident(pg_get_userbyid(relowner)) FROM pg_class WHERE oid = $1::regclass")
            .bind(&qualified)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
    // Indexes the user added: everything but the primary key and our two spatial indexes.
    let user_indexes: Vec<UserIndex> = sqlx::query_as(
        "SELECT c.relname::text AS name, am.amname::text AS method, i.indisunique AS is_unique, \
                (i.indexprs IS NULL AND i.indpred IS NULL AND 0 <> ALL (i.indkey::int2[]) \
                 AND (SELECT bool_and(o.opcdefault) FROM unnest(i.indclass::oid[]) AS k(oc) \
                      JOIN pg_opclass o ON o.oid = k.oc)) AS plain, \
                ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) \
                      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.n) AS columns \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam \
         WHERE i.indrelid = $1::regclass AND NOT i.indisprimary \
           AND pg_get_indexdef(i.indexrelid) !~ 'USING gist \\((the_geom|the_geom_webmercator)\\)$'",
    )
    .bind(&qualified)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;

    if let Err(e) = sqlx::query(AssertSqlSafe(format!("DROP TABLE {qualified}"))).execute(&mut *conn).await {
        if e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == "55P03") {
            return Err(ImportError::new(
                codes::CANNOT_OVERWRITE,
                format!(
                    "table {name} is being read by a query that has run for a while, so it was not replaced \
                     (waiting would have blocked every other reader of the table); try again later"
                ),
            ));
        }
        return Err(ImportError::new(
            codes::CANNOT_OVERWRITE,
            format!(
                "table {name} could not be replaced: {}",
                e.as_database_error().map(|d| d.message().to_string()).unwrap_or(e.to_string())
            ),
        ));
    }
    move_table(conn, &layer.staging, schema, name).await.map_err(db)?;

    let mut lost = Vec::new();
    for index in user_indexes {
        let Some(definition) = index.statement(&qualified) else {
            tracing::warn!(index = %index.name, "a user index on expressions or with special operators is not recreated");
            lost.push(index.name);
            continue;
        };
        sqlx::query("SAVEPOINT replace_index").execute(&mut *conn).await.map_err(db)?;
        match sqlx::query(AssertSqlSafe(definition)).execute(&mut *conn).await {
            Ok(_) => {
                sqlx::query("RELEASE SAVEPOINT replace_index").execute(&mut *conn).await.map_err(db)?;
            }
            Err(e) => {
                tracing::warn!(index = %index.name, error = %e, "a user index does not fit the new data");
                sqlx::query("ROLLBACK TO SAVEPOINT replace_index").execute(&mut *conn).await.map_err(db)?;
                lost.push(index.name);
            }
        }
    }
    for (grantee, privilege, grantable) in grants {
        let option = if grantable { " WITH GRANT OPTION" } else { "" };
        sqlx::query(AssertSqlSafe(format!("GRANT {privilege} ON {qualified} TO {grantee}{option}")))
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    sqlx::query(AssertSqlSafe(format!("ALTER TABLE {qualified} OWNER TO {owner}")))
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(lost)
}

/// An index a user added, as its parts.
#[derive(Debug, sqlx::FromRow)]
struct UserIndex {
    name: String,
    method: String,
    is_unique: bool,
    /// Plain columns only, with their default operator classes: what can be rebuilt from the parts.
    plain: Option<bool>,
    columns: Vec<String>,
}

/// Access methods an index may be rebuilt with (PostgreSQL's own).
const METHODS: &[&str] = &["btree", "hash", "gist", "gin", "brin", "spgist"];

impl UserIndex {
    /// The CREATE INDEX that rebuilds it on `table`, every name quoted; None when it is not plain.
    fn statement(&self, table: &str) -> Option<String> {
        if self.plain != Some(true) || self.columns.is_empty() || !METHODS.contains(&self.method.as_str()) {
            return None;
        }
        let columns: Vec<String> = self.columns.iter().map(|c| quote_ident(c)).collect();
        Some(format!(
            "CREATE {}INDEX {} ON {table} USING {} ({})",
            if self.is_unique { "UNIQUE " } else { "" },
            quote_ident(&self.name),
            self.method,
            columns.join(", ")
        ))
    }
}

fn db(e: sqlx::Error) -> ImportError {
    ImportError::new(codes::CANNOT_OVERWRITE, format!("replacing the table failed: {e}"))
}
