//! MySQL connector imports at their edges: sealed credentials gone however an import ends, the address
//! checked again when the worker connects, a database that never answers, SRIDs, other schemas and the
//! remaining types of the README's table.

use crate::common::mysql::TestMysql;
use crate::common::*;
use crate::connectors_mysql::{app, connector, import, import_ok, post};
use serde_json::{Value, json};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread")]
async fn sealed_credentials_are_deleted_when_an_import_is_cancelled_or_stuck() {
    let db = TestMysql::create("CREATE TABLE t (a INT);\nINSERT INTO t VALUES (1);").await;
    let app = TestApp::start_with(|s| {
        allow_local_connectors(s);
        s.runtime.workers = 0;
    })
    .await;
    let u = app.create_user("cy").await;
    let sealed = |id: Uuid| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, Option<Vec<u8>>>("SELECT connector_secret FROM geoimport.imports WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
                .is_some()
        }
    };
    let queue = || async {
        let resp = post(&app, &u, &json!({"connector": connector(&db, json!({"table": "t"}))})).await;
        assert_eq!(resp.status(), 200);
        let id: Uuid = resp.json::<Value>().await.unwrap()["item_queue_id"].as_str().unwrap().parse().unwrap();
        assert!(sealed(id).await, "a waiting import keeps its sealed connection");
        id
    };
    // Cancelled while it waits.
    let cancelled = queue().await;
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/imports/{cancelled}/cancel?api_key={}", u.key)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(!sealed(cancelled).await, "the cancelled import kept its sealed connection");
    // Stuck: its last worker died, and the reaper fails it with 6671.
    let stuck = queue().await;
    app.abandon(stuck, "importing", 3).await;
    let workers = app.spawn_workers(|_| {});
    assert_eq!(app.wait_final(&u, stuck).await["error_code"], 6671);
    assert!(!sealed(stuck).await, "the stuck import kept its sealed connection");
    workers.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_address_is_checked_again_when_the_worker_connects() {
    let db = TestMysql::create("CREATE TABLE t (a INT);\nINSERT INTO t VALUES (1);").await;
    // The API allows this machine's MariaDB, so the request is accepted...
    let app = TestApp::start_with(|s| {
        allow_local_connectors(s);
        s.runtime.workers = 0;
    })
    .await;
    let u = app.create_user("dee").await;
    let resp = post(&app, &u, &json!({"connector": connector(&db, json!({"table": "t"}))})).await;
    assert_eq!(resp.status(), 200);
    let id: Uuid = resp.json::<Value>().await.unwrap()["item_queue_id"].as_str().unwrap().parse().unwrap();
    // ...but the worker that takes it does not: it checks for itself, and refuses.
    let workers = app.spawn_workers(|s| s.runtime.connector_allow = vec![]);
    let status = app.wait_final(&u, id).await;
    assert_eq!(status["state"], "failure", "{status:#}");
    let about = status["get_error_text"]["what_about"].as_str().unwrap();
    assert!(about.contains("private"), "{about}");
    assert!(app.tables_of("dee").await.is_empty());
    workers.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn srids_schemas_and_the_remaining_types_are_read_as_the_readme_says() {
    let db = TestMysql::create(
        "CREATE TABLE shapes (id INT, g GEOMETRY, t TINYINT, s SMALLINT, b BIT(64), bin BINARY(2), vb VARBINARY(4));
         INSERT INTO shapes VALUES (1, ST_GeomFromText('POINT(0 0)', 3857),
           -5, -300, b'1111111111111111111111111111111111111111111111111111111111111111', x'0102', x'0a0b');
         CREATE TABLE far (id INT, g GEOMETRY);
         INSERT INTO far VALUES (1, ST_GeomFromText('POINT(500000 4649776)', 25830)), (2, ST_GeomFromText('POINT(1 2)', 4326));",
    )
    .await;
    // A second database of the same server, named by `schema`.
    let other = TestMysql::create("CREATE TABLE elsewhere (id INT);\nINSERT INTO elsewhere VALUES (42);").await;
    let app = app().await;
    let u = app.create_user("sol").await;
    import_ok(&app, &u, connector(&db, json!({"table": "shapes"}))).await;
    // EPSG:3857 is converted; another system from MySQL cannot be placed: NULL, counted.
    assert_eq!(app.texts("SELECT ST_AsText(the_geom) FROM sol.shapes").await, [Some("POINT(0 0)".to_string())]);
    let status = import_ok(&app, &u, connector(&db, json!({"table": "far"}))).await;
    assert_eq!(status["warnings"]["unreadable_geometries"], 1, "{status:#}");
    assert_eq!(
        app.texts("SELECT coalesce(ST_AsText(the_geom), 'NULL') FROM sol.far ORDER BY id").await,
        [Some("NULL".to_string()), Some("POINT(1 2)".to_string())]
    );
    let types: Vec<(String, String)> = app.columns("sol", "shapes").await;
    let type_of = |c: &str| types.iter().find(|(n, _)| n == c).map(|(_, t)| t.clone()).unwrap();
    assert_eq!(
        [type_of("t"), type_of("s"), type_of("b"), type_of("bin"), type_of("vb")],
        ["smallint", "smallint", "numeric(20,0)", "bytea", "bytea"].map(String::from)
    );
    assert_eq!(
        app.texts("SELECT concat_ws('|', t, s, b, encode(bin, 'hex'), encode(vb, 'hex')) FROM sol.shapes").await,
        [Some("-5|-300|18446744073709551615|0102|0a0b".to_string())]
    );
    let status = import_ok(&app, &u, connector(&db, json!({"schema": other.name, "table": "elsewhere"}))).await;
    assert_eq!(status["table_name"], "elsewhere");
    assert_eq!(app.count("SELECT id::bigint FROM sol.elsewhere").await, 42);
    // Every user starts with the connector row limit of the README.
    assert_eq!(
        app.count(&format!("SELECT max_rows_per_connection::bigint FROM geoimport.users WHERE id = '{}'", u.id)).await,
        1_000_000
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_that_never_accepts_the_connection_fails_after_the_connect_timeout() {
    let silent = silent_port().await;
    let app = TestApp::start_with(|s| {
        allow_local_connectors(s);
        s.runtime.connect_timeout_secs = 2;
    })
    .await;
    let u = app.create_user("tim").await;
    let started = std::time::Instant::now();
    let status = import(
        &app,
        &u,
        json!({"provider": "mysql", "connection": {"server": "127.0.0.1", "port": silent.port, "database": "d",
            "username": "u", "password": "p"}, "table": "t"}),
    )
    .await;
    assert_eq!(status["state"], "failure", "{status:#}");
    let about = status["get_error_text"]["what_about"].as_str().unwrap_or_default();
    assert!(about.contains("no answer from 127.0.0.1") && about.contains("within 2 seconds"), "{about}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "took {:?}", started.elapsed());
    drop(silent);
}
