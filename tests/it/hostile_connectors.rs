//! Threat: a user names a database for a connector import, and that database (or whoever answers at its
//! address) is hostile. It may lie in its catalog to inject SQL into our DDL, send rows of any size, be
//! our own database behind a permissive allow-list, or ask for casts that read our catalog.

use crate::common::pg_proxy::PgProxy;
use crate::common::source_pg::SourceDb;
use crate::common::*;
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

async fn source(setup: &str) -> SourceDb {
    let db = SourceDb::create().await;
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(setup.to_string())).execute(&mut conn).await.unwrap();
    db
}

fn connection(db: &SourceDb, port: u16) -> Value {
    json!({"server": "127.0.0.1", "port": port, "username": "postgres", "database": db.name, "sslmode": "disable"})
}

/// What a superuser of our own database could read, given one injected expression.
const PAYLOAD: &str = "int4 CHECK ((query_to_xml($q$select string_agg(username, ',') from geoimport.users$q$, \
                       false, false, '')::text)::int > 0)";

#[tokio::test(flavor = "multi_thread")]
async fn a_source_that_lies_about_its_types_cannot_inject_sql_into_our_tables() {
    let src = source("CREATE TABLE t (a int4); INSERT INTO t VALUES (1), (2);").await;
    // Every text the source answers that names the type is replaced by an injection.
    let replace = ["int4", "integer"].map(|t| (t.as_bytes().to_vec(), PAYLOAD.as_bytes().to_vec())).to_vec();
    let proxy = PgProxy::start(src.port, replace).await;
    let app = TestApp::start_with(allow_local_connectors).await;
    let victim = app.create_user("victim").await;
    let ana = app.create_user("ana").await;
    let status = app
        .import_json(
            &ana,
            &json!({"connector": {"provider": "postgres", "connection": connection(&src, proxy.port), "table": "t"}}),
        )
        .await;
    assert_eq!(status["state"], "complete", "{status:#}");
    assert!(!status.to_string().contains(&victim.name), "another user's name leaked: {status:#}");
    assert_eq!(app.column_type("ana", "t", "a").await, "integer");
    let checks = app.count("SELECT count(*) FROM pg_constraint WHERE conrelid = 'ana.t'::regclass AND contype = 'c'");
    assert_eq!(checks.await, 0, "no constraint of the source's making");
    assert_eq!(app.count("SELECT sum(a) FROM ana.t").await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_row_larger_than_the_cap_fails_6666_and_the_worker_stays_small() {
    let src = source("CREATE TABLE fine (a text); INSERT INTO fine VALUES ('small');").await;
    let allow = format!("127.0.0.1/32:{}", src.port);
    let app = TestApp::start_with(|s| {
        s.runtime.workers = 0;
        s.runtime.connector_allow = vec![allow.parse().unwrap()];
    })
    .await;
    let u = app.create_user("ana").await;
    let mut env = app.child_env();
    env.push(("GEOIMPORT_CONNECTOR_ALLOW".into(), allow.clone()));
    env.push(("GEOIMPORT_WORKERS".into(), "1".into()));
    let worker = ChildProcess::spawn(&["worker"], &env);
    let before = vm_hwm_kb(worker.pid());
    // One value of 160 MiB: the source builds it, the relay stops it at the cap.
    let connector = json!({"provider": "postgres", "connection": connection(&src, src.port),
                           "sql_query": "SELECT repeat('x', 160 * 1024 * 1024) AS big", "import_as": "big"});
    let status = app.import_json(&u, &json!({ "connector": connector })).await;
    assert_eq!(status["state"], "failure", "{status:#}");
    assert_eq!(status["error_code"], 6666, "{status:#}");
    let about = status["get_error_text"]["what_about"].as_str().unwrap();
    assert!(about.contains("32 MiB"), "{about}");
    let grown_mb = (vm_hwm_kb(worker.pid()) - before) / 1024;
    assert!(grown_mb < 150, "the worker grew by {grown_mb} MB for one hostile row");
    let (_, attempts, _) = app.job_row(status["id"].as_str().unwrap().parse().unwrap()).await;
    assert_eq!(attempts, 1, "a deterministic failure is not retried");
    // The same worker goes on with the next import.
    let connector = json!({"provider": "postgres", "connection": connection(&src, src.port), "table": "fine"});
    let status = app.import_json(&u, &json!({ "connector": connector })).await;
    assert_eq!(status["state"], "complete", "{status:#}");
    assert!(app.staging_tables().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn our_own_database_is_refused_even_when_loopback_is_allowed() {
    let app = TestApp::start_with(|s| s.runtime.connector_allow = vec!["127.0.0.0/8".parse().unwrap()]).await;
    let u = app.create_user("ana").await;
    let own = url::Url::parse(&app.db.url).unwrap();
    let port = own.port().unwrap_or(5432);
    for server in ["127.0.0.1", "localhost", "127.0.0.2"] {
        let connector = json!({"provider": "postgres", "connection": {"server": server, "port": port,
            "username": "postgres", "database": app.db.name, "sslmode": "disable"},
            "sql_query": "SELECT * FROM geoimport.users", "import_as": "users"});
        let resp = app.post_import_json(&u, &json!({ "connector": connector })).await;
        assert_eq!(resp.status(), 400, "{server}");
        let body: Value = resp.json().await.unwrap();
        assert!(body["errors"]["imports"].as_str().unwrap().contains("own database"), "{server}: {body}");
    }
    // The discovery route refuses it too, before connecting.
    let query = format!(
        "/api/v1/connectors/postgres/tables?api_key={}&server=127.0.0.1&port={port}&username=postgres&database={}",
        u.key, app.db.name
    );
    let resp = app.client.get(app.url(&query)).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("own database"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allow_list_entry_with_a_port_opens_that_port_only() {
    let src = source("CREATE TABLE t (a int); INSERT INTO t VALUES (1);").await;
    let (host, mysql_port, user, password) = crate::common::mysql::server();
    let my = crate::common::mysql::TestMysql::create("CREATE TABLE m (a INT);\nINSERT INTO m VALUES (7);").await;
    let entry = format!("127.0.0.1/32:{mysql_port}");
    let app = TestApp::start_with(|s| s.runtime.connector_allow = vec![entry.parse().unwrap()]).await;
    let u = app.create_user("ana").await;
    let pg = json!({"provider": "postgres", "connection": connection(&src, src.port), "table": "t"});
    let resp = app.post_import_json(&u, &json!({ "connector": pg })).await;
    assert_eq!(resp.status(), 400, "the PostgreSQL port stays closed");
    let mysql = json!({"provider": "mysql", "connection": {"server": host, "port": mysql_port, "username": user,
        "password": password, "database": my.name}, "table": "m"});
    let status = app.import_json_ok(&u, &json!({ "connector": mysql })).await;
    assert_eq!(status["rows_imported"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn casts_that_read_our_catalog_are_refused_at_once() {
    let src = source("CREATE TABLE t (n text); INSERT INTO t VALUES ('victim.secrets');").await;
    let app = TestApp::start_with(allow_local_connectors).await;
    let u = app.create_user("ana").await;
    for cast in ["regclass", "regnamespace", "regrole", "regtype", "oid", "record"] {
        let connector = json!({"provider": "postgres", "connection": connection(&src, src.port), "table": "t",
                               "columns": format!("n {cast}")});
        let resp = app.post_import_json(&u, &json!({ "connector": connector })).await;
        assert_eq!(resp.status(), 400, "{cast}");
        let body: Value = resp.json().await.unwrap();
        assert!(body["errors"]["imports"].as_str().unwrap().contains("not a type columns may ask for"), "{body}");
    }
    // Plain types still work.
    let connector = json!({"provider": "postgres", "connection": connection(&src, src.port), "table": "t",
                           "columns": "n varchar(40)"});
    app.import_json_ok(&u, &json!({ "connector": connector })).await;
    assert_eq!(app.column_type("ana", "t", "n").await, "character varying(40)");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sealed_connection_copied_to_another_tenants_import_does_not_open() {
    let src = source("CREATE TABLE t (a int); INSERT INTO t VALUES (1);").await;
    let allow = format!("127.0.0.1/32:{}", src.port);
    let app = TestApp::start_with(|s| {
        s.runtime.workers = 0;
        s.runtime.connector_allow = vec![allow.parse().unwrap()];
    })
    .await;
    let alice = app.create_user("alice").await;
    let mallory = app.create_user("mallory").await;
    let mine = json!({"connector": {"provider": "postgres", "connection": connection(&src, src.port), "table": "t"}});
    let queue = |user: &TestUser| {
        let (app, body) = (&app, mine.clone());
        let key = user.key.clone();
        async move {
            let resp =
                app.client.post(app.url(&format!("/api/v1/imports?api_key={key}"))).json(&body).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()["item_queue_id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap()
        }
    };
    let alices = queue(&alice).await;
    let mallorys = queue(&mallory).await;
    // Someone who can write the table moves Alice's sealed connection to Mallory's import.
    sqlx::query(
        "UPDATE geoimport.imports SET connector_secret = (SELECT connector_secret FROM geoimport.imports \
         WHERE id = $1) WHERE id = $2",
    )
    .bind(alices)
    .bind(mallorys)
    .execute(&app.pool)
    .await
    .unwrap();
    let workers = app.spawn_workers(|s| s.runtime.connector_allow = vec![allow.parse().unwrap()]);
    let status = app.wait_final(&mallory, mallorys).await;
    assert_eq!(status["error_code"], 1500, "{status:#}");
    assert!(status["get_error_text"]["what_about"].as_str().unwrap().contains("sealed"), "{status:#}");
    assert_eq!(app.wait_final(&alice, alices).await["state"], "complete");
    workers.stop().await;
}
