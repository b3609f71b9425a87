//! Replacing a published table with a newly loaded one (sync runs, and `collision_strategy=overwrite`),
//! inside the publishing transaction. Readers see the old table until the transaction commits and the new
//! one after, never a missing or half-loaded table: the swap takes the table's lock, and PostgreSQL
//! resolves a waiting query's table name again once it gets the lock.
//!
//! What users attach to a table survives the swap: its name, its grants, its owner, and the indexes they
//! added (recreated on the new data when its columns allow; otherwise named in the warnings).

use sqlx::{AssertSqlSafe, PgConnection};

use super::LoadedLayer;
use super::publish::move_table;
use crate::db::quote_ident;
use crate::errors::{ImportError, codes};

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
    let user_indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE i.indrelid = $1::regclass AND NOT i.indisprimary \
           AND pg_get_indexdef(i.indexrelid) !~ 'USING gist \\((the_geom|the_geom_webmercator)\\)$'",
    )
    .bind(&qualified)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;

    if let Err(e) = sqlx::query(AssertSqlSafe(format!("DROP TABLE {qualified}"))).execute(&mut *conn).await {
        return Err(ImportError::new(
            codes::CANNOT_OVERWRITE,
            format!(
                "table {name} could not be replaced: {}",
                e.as_database_error().map(|d| d.message().to_string()).unwrap_or(e.to_string())
            ),
        ));
    }
    move_table(conn, layer, schema, name).await.map_err(db)?;

    let mut lost = Vec::new();
    for (index, definition) in user_indexes {
        sqlx::query("SAVEPOINT replace_index").execute(&mut *conn).await.map_err(db)?;
        match sqlx::query(AssertSqlSafe(definition)).execute(&mut *conn).await {
            Ok(_) => {
                sqlx::query("RELEASE SAVEPOINT replace_index").execute(&mut *conn).await.map_err(db)?;
            }
            Err(e) => {
                tracing::warn!(index = %index, error = %e, "a user index does not fit the new data");
                sqlx::query("ROLLBACK TO SAVEPOINT replace_index").execute(&mut *conn).await.map_err(db)?;
                lost.push(index);
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

fn db(e: sqlx::Error) -> ImportError {
    ImportError::new(codes::CANNOT_OVERWRITE, format!("replacing the table failed: {e}"))
}
