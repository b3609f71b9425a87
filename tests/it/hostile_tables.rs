//! Threat: what a tenant (or anyone who may touch their tables) attaches to a table must not run with the
//! server's authority when the table is replaced, and a long reader must not make a replacement block the
//! table for everyone.

use std::time::{Duration, Instant};

use crate::common::*;
use sqlx::Connection;

#[tokio::test(flavor = "multi_thread")]
async fn an_index_on_a_function_is_not_replayed_when_the_table_is_replaced() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    app.import_ok(&u, "t.csv", "name,n\na,1\nb,2\n", "").await;
    for stmt in [
        "CREATE SEQUENCE public.evil_calls",
        "CREATE FUNCTION public.evil(t text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS \
         $$ BEGIN PERFORM nextval('public.evil_calls'); RETURN t; END $$",
        "CREATE INDEX evil_idx ON ana.t (public.evil(name))",
        "CREATE INDEX t_name_idx ON ana.t (name)",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(stmt)).execute(&app.pool).await.unwrap();
    }
    let calls = "SELECT last_value FROM public.evil_calls";
    let before = app.count(calls).await;
    let status = app.import_ok(&u, "t.csv", "name,n\nc,3\nd,4\ne,5\n", "collision_strategy=overwrite").await;
    assert_eq!(app.count(calls).await, before, "the index's function ran at the swap");
    assert_eq!(status["warnings"]["indexes_not_recreated"], serde_json::json!(["evil_idx"]), "{status:#}");
    let plain = "SELECT count(*) FROM pg_indexes WHERE schemaname = 'ana' AND indexname = 't_name_idx'";
    assert_eq!(app.count(plain).await, 1, "a plain index is recreated");
    assert_eq!(app.count("SELECT count(*) FROM ana.t").await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_reader_makes_a_replacement_fail_instead_of_blocking_the_table() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    app.import_ok(&u, "t.csv", "name\na\n", "").await;
    let mut reader = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut reader).await.unwrap();
    sqlx::query("SELECT * FROM ana.t").execute(&mut reader).await.unwrap();
    let started = Instant::now();
    let status = app.import_and_wait(&u, "t.csv", "name\nb\n", "collision_strategy=overwrite").await;
    assert_eq!(status["error_code"], 2013, "{status:#}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let about = status["get_error_text"]["what_about"].as_str().unwrap();
    assert!(about.contains("being read"), "{about}");
    // Other readers were never stuck behind the replacement, and the old table is whole.
    sqlx::query("ROLLBACK").execute(&mut reader).await.unwrap();
    assert_eq!(app.texts("SELECT name FROM ana.t").await, [Some("a".to_string())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_resolve_names_in_public_only_and_no_statement_outlives_a_job() {
    let app = TestApp::start().await;
    let path: String = sqlx::query_scalar("SHOW search_path").fetch_one(&app.pool).await.unwrap();
    assert_eq!(path, "public");
    let limit: String = sqlx::query_scalar("SHOW statement_timeout").fetch_one(&app.pool).await.unwrap();
    assert_eq!(limit, "10min");
}

#[tokio::test(flavor = "multi_thread")]
async fn files_named_like_the_catalogs_get_tables_of_their_own() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    // `pg_1`, `pg_2`... are reserved, so the second `pg` once searched for a free name for ever
    for (file, table) in [("pg.csv", "pg"), ("pg.csv", "table_pg_1"), ("pg_class.csv", "table_pg_class")] {
        let status = app.import_ok(&u, file, "name\na\n", "").await;
        assert_eq!(status["table_name"], table, "{status:#}");
    }
    let tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'ana'";
    assert_eq!(app.count(tables).await, 3);
}
