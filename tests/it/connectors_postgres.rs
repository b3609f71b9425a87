//! Connector imports from a real remote PostgreSQL with PostGIS (a database of the test's own on a second
//! server: connectors never read geoimport's own), and the discovery routes for both providers.

use crate::common::mysql::TestMysql;
use crate::common::source_pg::SourceDb;
use crate::common::*;
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

async fn app() -> TestApp {
    logs::capture();
    TestApp::start_with(allow_local_connectors).await
}

/// A source database with PostGIS and `setup` run in it.
async fn source(setup: &str) -> SourceDb {
    let db = SourceDb::create().await;
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE EXTENSION IF NOT EXISTS postgis; {setup}")))
        .execute(&mut conn)
        .await
        .unwrap();
    db
}

/// The connection to the source as a user gives it: no sslmode, so the default (`require`) is what runs.
fn connection(db: &SourceDb) -> Value {
    json!({"server": "127.0.0.1", "port": db.port, "username": "postgres", "password": "", "database": db.name})
}

/// Queues a connector import and waits for its final status.
async fn import(app: &TestApp, user: &TestUser, connector: Value) -> Value {
    app.import_json(user, &json!({ "connector": connector })).await
}

async fn import_ok(app: &TestApp, user: &TestUser, connector: Value) -> Value {
    app.import_json_ok(user, &json!({ "connector": connector })).await
}

const PARKS: &str = "
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE TABLE parks (
  id serial PRIMARY KEY, name varchar(40), area numeric(10,2), tags text[], info jsonb, opened date,
  feeling mood, geom geometry(Point, 4326), outline geometry(Polygon, 3857), seen timestamptz
);
INSERT INTO parks (name, area, tags, info, opened, feeling, geom, outline, seen) VALUES
  ('Retiro', 118.00, '{green,big}', '{\"a\": 1}', '1868-01-01', 'happy', ST_SetSRID(ST_MakePoint(-3.6823, 40.4153), 4326),
   ST_Transform(ST_MakeEnvelope(-3.69, 40.41, -3.67, 40.42, 4326), 3857), '2024-01-01 10:00+00'),
  ('Empty', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
CREATE TABLE utm (name text, geom geometry(Point, 25830));
INSERT INTO utm VALUES ('Sol', ST_Transform(ST_SetSRID(ST_MakePoint(-3.7038, 40.4168), 4326), 25830));
CREATE SCHEMA other;
CREATE TABLE other.things (label text, latitude float8, longitude numeric);
INSERT INTO other.things VALUES ('a', 41.38, 2.17);
";

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_postgis_table_keeps_its_types_and_geometry() {
    let src = source(PARKS).await;
    let app = app().await;
    let u = app.create_user("ana").await;
    let status =
        import_ok(&app, &u, json!({"provider": "postgres", "connection": connection(&src), "table": "parks"})).await;
    assert_eq!(status["data_type"], "datasource");
    assert_eq!(status["rows_imported"], 2);
    let columns = app.columns("ana", "parks").await;
    let types: Vec<(&str, &str)> = columns.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    assert_eq!(
        types,
        [
            ("cartodb_id", "bigint"),
            ("the_geom", "geometry(Geometry,4326)"),
            ("the_geom_webmercator", "geometry(Geometry,3857)"),
            ("id", "integer"),
            ("name", "character varying(40)"),
            ("area", "numeric(10,2)"),
            ("tags", "text[]"),
            ("info", "jsonb"),
            ("opened", "date"),
            ("feeling", "text"),
            ("outline", "geometry(Polygon,3857)"),
            ("seen", "timestamp with time zone"),
        ]
    );
    assert_eq!(
        app.texts(
            "SELECT concat_ws('|', ST_AsText(the_geom), name, area, tags[2], info->>'a', opened, feeling, \
             ST_SRID(outline), to_char(seen AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')) FROM ana.parks ORDER BY id"
        )
        .await,
        [
            Some("POINT(-3.6823 40.4153)|Retiro|118.00|big|1|1868-01-01|happy|3857|2024-01-01 10:00".into()),
            Some("Empty".into())
        ]
    );
    let close_to_postgis = "SELECT count(*) FROM ana.parks \
        WHERE ST_DWithin(the_geom_webmercator, ST_Transform(the_geom, 3857), 0.001)";
    assert_eq!(app.count(close_to_postgis).await, 1);

    // Another reference system is reprojected on the source.
    import_ok(&app, &u, json!({"provider": "postgres", "connection": connection(&src), "table": "utm"})).await;
    assert_eq!(
        app.texts("SELECT ST_AsText(ST_SnapToGrid(the_geom, 0.0001)) FROM ana.utm").await,
        [Some("POINT(-3.7038 40.4168)".into())]
    );
    // A schema other than public, and points from latitude/longitude.
    import_ok(
        &app,
        &u,
        json!({"provider": "postgres", "connection": connection(&src), "schema": "other", "table": "things"}),
    )
    .await;
    assert_eq!(app.texts("SELECT ST_AsText(the_geom) FROM ana.things").await, [Some("POINT(2.17 41.38)".into())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_query_with_a_computed_geometry_and_the_row_limit() {
    let src = source(PARKS).await;
    let app = app().await;
    let u = app.create_user("bob").await;
    import_ok(
        &app,
        &u,
        json!({"provider": "postgres", "connection": connection(&src), "import_as": "buffers",
               "sql_query": "SELECT name, ST_Buffer(geom, 0.01) AS shape FROM parks WHERE geom IS NOT NULL;"}),
    )
    .await;
    assert_eq!(
        app.texts("SELECT name || ' ' || GeometryType(the_geom) FROM bob.buffers").await,
        [Some("Retiro POLYGON".into())]
    );
    app.set_limit(&u, "max_rows_per_connection", 1).await;
    let status =
        import_ok(&app, &u, json!({"provider": "postgres", "connection": connection(&src), "table": "parks"})).await;
    assert_eq!(status["warnings"], json!({"max_rows_per_connection": 1}));
    assert_eq!(app.count("SELECT count(*) FROM bob.parks").await, 1);
    // Failures: unknown table, duplicate names, and a query that may not write.
    let fails = [
        (json!({"table": "nope"}), "unknown table"),
        (json!({"sql_query": "SELECT 1 AS a, 2 AS a", "import_as": "x"}), "two columns named 'a'"),
        (json!({"sql_query": "DELETE FROM parks RETURNING *", "import_as": "x"}), "query error"),
    ];
    for (extra, expected) in fails {
        let mut c = json!({"provider": "postgres", "connection": connection(&src)});
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let status = import(&app, &u, c).await;
        assert_eq!(status["error_code"], 1500, "{status:#}");
        let about = status["get_error_text"]["what_about"].as_str().unwrap();
        assert!(about.contains(expected), "expected '{expected}' in {about}");
    }
    let mut conn = PgConnection::connect(&src.url).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM parks").fetch_one(&mut conn).await.unwrap();
    assert_eq!(left, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_remote_geometry_is_repaired() {
    let src = source(
        "CREATE TABLE lots (id int, geom geometry(Polygon, 4326));
         INSERT INTO lots VALUES (1, 'SRID=4326;POLYGON((0 0,2 2,2 0,0 2,0 0))'), (2, NULL);",
    )
    .await;
    let app = app().await;
    let u = app.create_user("sol").await;
    let status =
        import_ok(&app, &u, json!({"provider": "postgres", "connection": connection(&src), "table": "lots"})).await;
    assert_eq!(status["warnings"]["invalid_geometries_repaired"], 1, "{status:#}");
    assert_eq!(app.count("SELECT count(*) FROM sol.lots WHERE id = 1 AND ST_IsValid(the_geom)").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM sol.lots WHERE abs(ST_Area(the_geom) - 2) < 1e-9").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn sslmode_decides_whether_the_source_connection_is_encrypted() {
    let src = source("").await;
    let app = app().await;
    let u = app.create_user("tim").await;
    // The source itself tells whether the connection that reads it is encrypted.
    let query = "SELECT ssl::text AS encrypted FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    for (mode, expected) in
        [(None, "true"), (Some("require"), "true"), (Some("prefer"), "true"), (Some("disable"), "false")]
    {
        let mut connection = connection(&src);
        if let Some(mode) = mode {
            connection["sslmode"] = json!(mode);
        }
        let table = format!("tls_{}", mode.unwrap_or("default"));
        import_ok(
            &app,
            &u,
            json!({"provider": "postgres", "connection": connection, "sql_query": query, "import_as": table}),
        )
        .await;
        assert_eq!(app.texts(&format!("SELECT encrypted FROM tim.{table}")).await, [Some(expected.into())], "{mode:?}");
    }
    // The source serves a self-signed certificate: both kinds of verification refuse it, and say so.
    for mode in ["verify-ca", "verify-full"] {
        let mut connection = connection(&src);
        connection["sslmode"] = json!(mode);
        connection["server"] = json!("localhost");
        let status = import(
            &app,
            &u,
            json!({"provider": "postgres", "connection": connection, "sql_query": query, "import_as": "tls_verified"}),
        )
        .await;
        assert_eq!(status["error_code"], 1500, "{mode}: {status:#}");
        let about = status["get_error_text"]["what_about"].as_str().unwrap();
        assert!(about.to_lowercase().contains("certificate"), "{mode}: {about}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_routes_list_providers_check_connections_and_list_tables() {
    let src = source(PARKS).await;
    let my = TestMysql::create("CREATE TABLE t1 (a INT);\nCREATE TABLE t2 (b INT);").await;
    let app = app().await;
    let u = app.create_user("cat").await;
    let get = |path: String| {
        let client = app.client.clone();
        let url = app.url(&path);
        async move {
            let resp = client.get(url).send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let key = &u.key;
    let (code, body) = get(format!("/api/v1/connectors?api_key={key}")).await;
    assert_eq!(code, 200);
    assert_eq!(body["mysql"]["name"], "MySQL");
    assert_eq!(body["mysql"]["enabled"], true);
    assert_eq!(body["postgres"]["name"], "PostgreSQL");
    assert_eq!(get("/api/v1/connectors".into()).await.0, 401);

    let (code, body) = get(format!("/api/v1/connectors/postgres?api_key={key}")).await;
    assert_eq!(code, 200);
    assert_eq!(body["features"]["sql_queries"], true);
    assert_eq!(body["features"]["list_tables"], true);
    assert_eq!(body["parameters"]["connection"]["database"]["required"], true);
    assert_eq!(body["parameters"]["connection"]["sslmode"]["required"], false);
    assert_eq!(body["parameters"]["table"]["required"], false);
    let (code, body) = get(format!("/api/v1/connectors/oracle?api_key={key}")).await;
    assert_eq!(code, 422);
    assert!(body["errors"].as_str().unwrap().contains("not a connector provider"));

    let pg = format!("server=127.0.0.1&port={}&username=postgres&database={}", src.port, src.name);
    let (code, body) = get(format!("/api/v1/connectors/postgres/connect?api_key={key}&{pg}")).await;
    assert_eq!((code, body), (200, json!({"connected": true})));
    let (code, body) = get(format!(
        "/api/v1/connectors/postgres/connect?api_key={key}&server=127.0.0.1&port={}&username=postgres&database=gi_none",
        src.port
    ))
    .await;
    assert_eq!(code, 422);
    assert_eq!(body["connected"], false);
    assert!(body["errors"].as_str().unwrap().contains("unknown database"), "{body}");
    let (code, body) = get(format!("/api/v1/connectors/postgres/connect?api_key={key}&server=127.0.0.1")).await;
    assert_eq!(code, 422);
    assert!(body["errors"].as_str().unwrap().contains("missing connection parameters"), "{body}");

    let (code, body) = get(format!("/api/v1/connectors/postgres/tables?api_key={key}&{pg}")).await;
    assert_eq!(code, 200, "{body}");
    let tables: Vec<String> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{}.{}", t["schema"].as_str().unwrap(), t["name"].as_str().unwrap()))
        .collect();
    assert!(tables.contains(&"public.parks".to_string()) && tables.contains(&"other.things".to_string()), "{tables:?}");
    assert!(!tables.iter().any(|t| t.starts_with("pg_catalog.")));

    let (host, port, user, password) = crate::common::mysql::server();
    let mq = format!("server={host}&port={port}&username={user}&password={password}&database={}", my.name);
    let (code, body) = get(format!("/api/v1/connectors/mysql/tables?api_key={key}&{mq}")).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body, json!([{"schema": my.name, "name": "t1"}, {"schema": my.name, "name": "t2"}]));
    let (code, body) = get(format!("/api/v1/connectors/mysql/connect?api_key={key}&{mq}")).await;
    assert_eq!((code, body), (200, json!({"connected": true})));
    let closed = crate::common::closed_port();
    let (code, body) = get(format!(
        "/api/v1/connectors/mysql/tables?api_key={key}&server={host}&port={}&username=x&password=y",
        closed.port
    ))
    .await;
    assert_eq!(code, 400);
    assert!(body["errors"].as_str().unwrap().contains("nothing accepts connections"), "{body}");

    // The routes are in the OpenAPI document.
    let doc: Value = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    for path in [
        "/api/v1/connectors",
        "/api/v1/connectors/{provider}",
        "/api/v1/connectors/{provider}/tables",
        "/api/v1/connectors/{provider}/connect",
    ] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} is not documented");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_password_of_a_postgres_source_is_never_shown() {
    let src = source("CREATE TABLE t (a int); INSERT INTO t VALUES (1);").await;
    let app = app().await;
    let u = app.create_user("pia").await;
    let password = format!("Pg-s3cret-{}", uuid::Uuid::new_v4().simple());
    let mut connection = connection(&src);
    connection["password"] = json!(password);
    // One that succeeds and one that fails (an unknown table): neither shows the password anywhere.
    let ok = import(&app, &u, json!({"provider": "postgres", "connection": connection, "table": "t"})).await;
    assert_eq!(ok["state"], "complete", "{ok:#}");
    let failed = import(&app, &u, json!({"provider": "postgres", "connection": connection, "table": "nope"})).await;
    assert_eq!(failed["state"], "failure", "{failed:#}");
    for status in [&ok, &failed] {
        assert!(!status.to_string().contains(&password), "the status shows the password: {status:#}");
    }
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(i)::text FROM geoimport.imports i").fetch_all(&app.pool).await.unwrap();
    assert!(rows.iter().all(|r| !r.contains(&password)), "a job row holds the password in clear");
    let logs = logs::text();
    let failed_id = failed["id"].as_str().unwrap();
    assert!(logs.lines().any(|l| l.contains(failed_id)), "the import's log lines were captured");
    assert!(!logs.contains(&password), "the password reached the logs");
}

#[tokio::test(flavor = "multi_thread")]
async fn geography_keeps_its_modifiers_domains_arrive_as_text_and_nothing_is_installed_anywhere() {
    let src = source(
        "CREATE EXTENSION hstore;
         CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
         CREATE TABLE sites (id int, n positive, place geography(Point,4326), zone geography(Polygon,4326), attrs hstore);
         INSERT INTO sites VALUES (1, 7, 'SRID=4326;POINT(2.35 48.85)', 'SRID=4326;POLYGON((0 0,1 0,1 1,0 0))', 'a=>1');",
    )
    .await;
    let app = app().await;
    let u = app.create_user("gia").await;
    let extensions = "SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension";
    let before = app.texts(extensions).await;
    // Through the user's prefix, a query named by import_as.
    let resp = app
        .client
        .post(app.url(&format!("/user/gia/api/v1/imports/?api_key={}", u.key)))
        .json(&json!({"connector": {"provider": "postgres", "connection": connection(&src),
            "sql_query": "SELECT * FROM sites", "import_as": "my_sites"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id: uuid::Uuid = resp.json::<Value>().await.unwrap()["item_queue_id"].as_str().unwrap().parse().unwrap();
    let status = app.wait_final(&u, id).await;
    assert_eq!(status["state"], "complete", "{status:#}");
    assert_eq!((status["table_name"].as_str(), status["display_name"].as_str()), (Some("my_sites"), Some("my_sites")));
    assert_eq!(app.column_type("gia", "my_sites", "n").await, "text", "a domain is the source's own type");
    assert_eq!(app.column_type("gia", "my_sites", "zone").await, "geography(Polygon,4326)");
    assert_eq!(app.column_type("gia", "my_sites", "attrs").await, "text", "another extension's type");
    assert_eq!(app.texts("SELECT attrs FROM gia.my_sites").await, [Some("\"a\"=>\"1\"".to_string())]);
    assert_eq!(
        app.texts("SELECT n || ' ' || ST_AsText(the_geom) || ' ' || ST_AsText(zone) FROM gia.my_sites").await,
        [Some("7 POINT(2.35 48.85) POLYGON((0 0,1 0,1 1,0 0))".to_string())]
    );
    // No foreign data wrapper, no extension: neither here nor on the source.
    assert_eq!(app.texts(extensions).await, before);
    assert_eq!(app.count("SELECT count(*) FROM pg_foreign_server").await, 0);
    let mut source = PgConnection::connect(&src.url).await.unwrap();
    let on_source: String = sqlx::query_scalar("SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension")
        .fetch_one(&mut source)
        .await
        .unwrap();
    assert_eq!(on_source, "hstore,plpgsql,postgis", "only what the test itself made");
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_lists_at_most_500_tables_also_under_the_users_prefix() {
    let src =
        source("DO $$ BEGIN FOR i IN 1..501 LOOP EXECUTE format('CREATE TABLE t%s (a int)', i); END LOOP; END $$;")
            .await;
    let app = app().await;
    let u = app.create_user("ida").await;
    let url = format!(
        "/user/ida/api/v1/connectors/postgres/tables?api_key={}&server=127.0.0.1&port={}&username=postgres&database={}",
        u.key, src.port, src.name
    );
    let resp = app.client.get(app.url(&url)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let tables: Value = resp.json().await.unwrap();
    assert_eq!(tables.as_array().unwrap().len(), 500);
}
