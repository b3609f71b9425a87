//! Connector imports from a real MariaDB: every type mapping, queries, spatial and lat/lon columns,
//! failures that say what went wrong without ever showing the password, and the row limit.

use crate::common::mysql::{TestMysql, server, wall_clock};
use crate::common::*;
use serde_json::{Value, json};
use uuid::Uuid;

pub(crate) async fn app() -> TestApp {
    logs::capture();
    TestApp::start_with(allow_local_connectors).await
}

/// The reference's connector object for the test database, with `extra` merged in.
pub(crate) fn connector(db: &TestMysql, extra: Value) -> Value {
    let (host, port, username, password) = server();
    let mut c = json!({
        "provider": "mysql",
        "connection": {"server": host, "port": port, "database": db.name, "username": username, "password": password},
    });
    if let (Some(obj), Value::Object(more)) = (c.as_object_mut(), extra) {
        obj.extend(more);
    }
    c
}

pub(crate) async fn post(app: &TestApp, user: &TestUser, body: &Value) -> reqwest::Response {
    app.client.post(app.url(&format!("/api/v1/imports/?api_key={}", user.key))).json(body).send().await.unwrap()
}

/// Queues a connector import and waits for its final status.
pub(crate) async fn import(app: &TestApp, user: &TestUser, connector: Value) -> Value {
    app.import_json(user, &json!({ "connector": connector })).await
}

pub(crate) async fn import_ok(app: &TestApp, user: &TestUser, connector: Value) -> Value {
    app.import_json_ok(user, &json!({ "connector": connector })).await
}

const EVERY_TYPE: &str = "
SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION';
CREATE TABLE everything (
  id INT PRIMARY KEY, flag TINYINT(1), tiny_u TINYINT UNSIGNED, small_u SMALLINT UNSIGNED, medium MEDIUMINT,
  int_u INT UNSIGNED, big BIGINT, big_u BIGINT UNSIGNED, price DECIMAL(12,3), ratio FLOAT, score DOUBLE,
  born DATE, seen DATETIME(6), stamped TIMESTAMP NULL DEFAULT NULL, duration TIME, yr YEAR,
  mood ENUM('happy','sad'), tags SET('a','b','c'), doc JSON, data BLOB, bit1 BIT(1), bits BIT(12),
  name VARCHAR(50), latin_name VARCHAR(50) CHARACTER SET latin1, notes TEXT
);
INSERT INTO everything VALUES (1, 1, 255, 65535, -8388608, 4294967295, -9223372036854775808,
  18446744073709551615, 123456789.125, 1.5, 2.25, '2024-02-29', '2024-03-01 10:20:30.123456',
  '2024-03-01 10:20:30', '-838:59:59', 2024, 'happy', 'a,c', '{\"k\": [1, 2]}', X'00FF10', b'1', b'101010101010',
  'Ñandú', 'Señor', 'hello');
INSERT INTO everything VALUES (2, 0, 0, 0, 0, 0, 0, 0, -0.001, NULL, NULL, '0000-00-00', '0000-00-00 00:00:00',
  '0000-00-00 00:00:00', '00:00:01', 0, 'sad', '', NULL, NULL, b'0', b'0', NULL, NULL, NULL);
INSERT INTO everything (id) VALUES (3);
";

#[tokio::test(flavor = "multi_thread")]
async fn the_reference_example_imports_every_mysql_type_as_pgloader_users_want() {
    let db = TestMysql::create(EVERY_TYPE).await;
    let app = app().await;
    let u = app.create_user("ana").await;
    // The curl example, as JSON.
    let status = import_ok(&app, &u, connector(&db, json!({"table": "everything"}))).await;
    assert_eq!(status["data_type"], "datasource");
    assert_eq!(status["table_name"], "everything");
    assert_eq!(status["display_name"], "everything");
    assert_eq!(status["rows_imported"], 3);
    assert_eq!(status["warnings"]["zero_dates"], json!({"born": 1, "seen": 1, "stamped": 1, "yr": 1}));

    let columns = app.columns("ana", "everything").await;
    let types: Vec<(&str, &str)> = columns.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    assert_eq!(
        types,
        [
            ("cartodb_id", "bigint"),
            ("the_geom", "geometry(Geometry,4326)"),
            ("the_geom_webmercator", "geometry(Geometry,3857)"),
            ("id", "integer"),
            ("flag", "boolean"),
            ("tiny_u", "smallint"),
            ("small_u", "integer"),
            ("medium", "integer"),
            ("int_u", "bigint"),
            ("big", "bigint"),
            ("big_u", "numeric(20,0)"),
            ("price", "numeric(12,3)"),
            ("ratio", "real"),
            ("score", "double precision"),
            ("born", "date"),
            ("seen", "timestamp with time zone"),
            ("stamped", "timestamp with time zone"),
            ("duration", "interval"),
            ("yr", "smallint"),
            ("mood", "text"),
            ("tags", "text"),
            ("doc", "jsonb"),
            ("data", "bytea"),
            ("bit1", "boolean"),
            ("bits", "bigint"),
            ("name", "text"),
            ("latin_name", "text"),
            ("notes", "text"),
        ]
    );
    // DATETIME is a wall-clock time of the source server's zone, TIMESTAMP an instant (written at UTC).
    let seen = wall_clock("seen").await;
    let row = |id: i32| {
        format!(
            "SELECT concat_ws('|', flag, tiny_u, small_u, medium, int_u, big, big_u, price, ratio, score, born, \
             to_char({seen}, 'YYYY-MM-DD HH24:MI:SS.US'), \
             to_char(stamped AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), duration, yr, mood, tags, doc, \
             encode(data, 'hex'), bit1, bits, name, latin_name, notes) FROM ana.everything WHERE id = {id}"
        )
    };
    assert_eq!(
        app.texts(&row(1)).await,
        [Some(
            "t|255|65535|-8388608|4294967295|-9223372036854775808|18446744073709551615|123456789.125|1.5|2.25|\
             2024-02-29|2024-03-01 10:20:30.123456|2024-03-01 10:20:30|-838:59:59|2024|happy|a,c|{\"k\": [1, 2]}|\
             00ff10|t|2730|Ñandú|Señor|hello"
                .to_string()
        )]
    );
    // Zero dates are NULL (concat_ws skips NULLs), the rest as written.
    assert_eq!(app.texts(&row(2)).await, [Some("f|0|0|0|0|0|0|-0.001|00:00:01|sad||f|0".to_string())]);
    assert_eq!(
        app.count("SELECT count(*) FROM ana.everything WHERE id = 3 AND flag IS NULL AND born IS NULL").await,
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM ana.everything WHERE the_geom IS NULL").await, 3);
    assert!(app.staging_tables().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_imports_under_its_import_as_name() {
    let db = TestMysql::create(EVERY_TYPE).await;
    let app = app().await;
    let u = app.create_user("bea").await;
    let status = import_ok(
        &app,
        &u,
        connector(
            &db,
            json!({"sql_query": "SELECT name, price * 2 AS doubled FROM everything WHERE id = 1;", "import_as": "Doubled Prices"}),
        ),
    )
    .await;
    assert_eq!(status["table_name"], "doubled_prices");
    assert_eq!(app.column_type("bea", "doubled_prices", "doubled").await, "numeric");
    assert_eq!(
        app.texts("SELECT name || ' ' || doubled FROM bea.doubled_prices").await,
        [Some("Ñandú 246913578.250".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spatial_column_becomes_the_geom_and_others_stay_geometries() {
    let db = TestMysql::create(
        "CREATE TABLE places (id INT, name VARCHAR(20), location POINT, area POLYGON);
         INSERT INTO places VALUES (1, 'Madrid', ST_GeomFromText('POINT(-3.7038 40.4168)'),
           ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))'));
         INSERT INTO places VALUES (2, 'Barcelona', ST_GeomFromText('POINT(2.17 41.38)', 4326), NULL);
         INSERT INTO places VALUES (3, 'Nowhere', NULL, NULL);",
    )
    .await;
    let app = app().await;
    let u = app.create_user("cid").await;
    let status = import_ok(&app, &u, connector(&db, json!({"table": "places"}))).await;
    assert_eq!(status["rows_imported"], 3);
    let names: Vec<String> = app.columns("cid", "places").await.into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["cartodb_id", "the_geom", "the_geom_webmercator", "id", "name", "area"]);
    assert_eq!(app.column_type("cid", "places", "area").await, "geometry");
    assert_eq!(
        app.texts("SELECT ST_AsText(the_geom) || ' ' || ST_SRID(the_geom) FROM cid.places ORDER BY id").await,
        [Some("POINT(-3.7038 40.4168) 4326".to_string()), Some("POINT(2.17 41.38) 4326".to_string()), None]
    );
    let close_to_postgis = "SELECT count(*) FROM cid.places \
        WHERE ST_DWithin(the_geom_webmercator, ST_Transform(the_geom, 3857), 0.001)";
    assert_eq!(app.count(close_to_postgis).await, 2);
    assert_eq!(
        app.texts("SELECT ST_AsText(area) FROM cid.places WHERE id = 1").await,
        [Some("POLYGON((0 0,1 0,1 1,0 0))".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_source_polygon_is_repaired_like_a_file_s() {
    // MariaDB stores a self-crossing "bow tie" without complaint; PostGIS functions would reject it later.
    let db = TestMysql::create(
        "CREATE TABLE lots (id INT, shape POLYGON);
         INSERT INTO lots VALUES (1, ST_GeomFromText('POLYGON((0 0,2 2,2 0,0 2,0 0))')),
                                 (2, ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 1,0 0))'));",
    )
    .await;
    let app = app().await;
    let u = app.create_user("rae").await;
    let status = import_ok(&app, &u, connector(&db, json!({"table": "lots"}))).await;
    assert_eq!(status["warnings"]["invalid_geometries_repaired"], 1, "{status:#}");
    assert_eq!(app.count("SELECT count(*) FROM rae.lots WHERE ST_IsValid(the_geom)").await, 2);
    assert_eq!(app.count("SELECT count(*) FROM rae.lots WHERE ST_IsValid(the_geom_webmercator)").await, 2);
    assert_eq!(app.count("SELECT count(*) FROM rae.lots WHERE id = 1 AND abs(ST_Area(the_geom) - 2) < 1e-9").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn latitude_and_longitude_columns_make_points() {
    let db = TestMysql::create(
        "CREATE TABLE stops (stop VARCHAR(10), latitude DOUBLE, longitude DECIMAL(9,6));
         INSERT INTO stops VALUES ('a', 40.4168, -3.703800), ('b', NULL, 2.1), ('c', 95, 0);",
    )
    .await;
    let app = app().await;
    let u = app.create_user("dan").await;
    import_ok(&app, &u, connector(&db, json!({"table": "stops"}))).await;
    assert_eq!(
        app.texts("SELECT stop || ':' || coalesce(ST_AsText(the_geom), '-') FROM dan.stops ORDER BY stop").await,
        [Some("a:POINT(-3.7038 40.4168)".into()), Some("b:-".into()), Some("c:-".into())]
    );
    assert_eq!(app.column_type("dan", "stops", "longitude").await, "numeric(9,6)");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_geometry_named_text_column_is_read_and_misfits_are_kept() {
    let db = TestMysql::create(
        "CREATE TABLE shapes (id INT, wkt TEXT);
         INSERT INTO shapes VALUES (1, 'POINT(1 2)'), (2, 'not a shape'), (3, NULL);",
    )
    .await;
    let app = app().await;
    let u = app.create_user("eva").await;
    let status = import_ok(&app, &u, connector(&db, json!({"table": "shapes"}))).await;
    assert_eq!(status["warnings"]["invalid_values"], json!({"wkt": 1}));
    assert_eq!(
        app.texts("SELECT coalesce(ST_AsText(the_geom), wkt_invalid, '-') FROM eva.shapes ORDER BY id").await,
        [Some("POINT(1 2)".into()), Some("not a shape".into()), Some("-".into())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn early_years_are_dates_and_only_zero_parts_become_null() {
    // pgloader's zero-dates-to-null once turned '0009-12-04' into NULL (its #1098): a small year is a date.
    let db = TestMysql::create(
        "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION';
         CREATE TABLE early (id INT, d DATE, t DATETIME);
         INSERT INTO early VALUES (1, '0009-12-04', '0099-01-02 03:04:05'), (2, '2020-00-00', '2020-05-00 00:00:00'),
                                (3, '0000-00-00', '1000-01-01 00:00:00');",
    )
    .await;
    let app = app().await;
    let u = app.create_user("gus").await;
    let status = import_ok(&app, &u, connector(&db, json!({"table": "early"}))).await;
    assert_eq!(status["warnings"]["zero_dates"], json!({"d": 2, "t": 1}), "{status:#}");
    let t = wall_clock("t").await;
    assert_eq!(
        app.texts(&format!(
            "SELECT coalesce(to_char(d, 'YYYY-MM-DD'), '-') || ' ' || \
             coalesce(to_char({t}, 'YYYY-MM-DD HH24:MI:SS'), '-') FROM gus.early ORDER BY id"
        ))
        .await,
        [Some("0009-12-04 0099-01-02 03:04:05".into()), Some("- -".into()), Some("- 1000-01-01 00:00:00".into())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_row_limit_the_table_stops_and_says_so() {
    let db = TestMysql::create(
        "CREATE TABLE many (n INT);
         INSERT INTO many VALUES (1), (2), (3), (4), (5);",
    )
    .await;
    let app = app().await;
    let u = app.create_user("fay").await;
    app.set_limit(&u, "max_rows_per_connection", 2).await;
    let status = import_ok(&app, &u, connector(&db, json!({"table": "many"}))).await;
    assert_eq!(status["warnings"], json!({"max_rows_per_connection": 2}));
    assert_eq!(app.count("SELECT count(*) FROM fay.many").await, 2);
    // A query is cut off while reading.
    let status = import_ok(
        &app,
        &u,
        connector(&db, json!({"sql_query": "SELECT n FROM many ORDER BY n DESC", "import_as": "top"})),
    )
    .await;
    assert_eq!(status["warnings"], json!({"max_rows_per_connection": 2}));
    assert_eq!(
        app.texts("SELECT n::text FROM fay.top ORDER BY cartodb_id").await,
        [Some("5".into()), Some("4".into())]
    );
    // Exactly at the limit nothing is cut, and nothing is said.
    let status =
        import_ok(&app, &u, connector(&db, json!({"sql_query": "SELECT n FROM many LIMIT 2", "import_as": "two"})))
            .await;
    assert_eq!(status["warnings"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_say_what_went_wrong_and_never_show_the_password() {
    let db = TestMysql::create("CREATE TABLE t (a INT);\nINSERT INTO t VALUES (1);").await;
    let app = app().await;
    let u = app.create_user("gus").await;
    let password = format!("Sup3r-{}", Uuid::new_v4().simple());
    let user = db.reader(&password).await;
    let (host, port, _, _) = server();
    let conn = |username: &str, password: &str, database: &str| json!({"server": host, "port": port, "database": database, "username": username, "password": password});
    // The reader with the right password works, and the sealed password is nowhere in the job row.
    let ok =
        import_ok(&app, &u, json!({"provider": "mysql", "connection": conn(&user, &password, &db.name), "table": "t"}))
            .await;
    let id: Uuid = ok["id"].as_str().unwrap().parse().unwrap();
    let (spec, secret): (Option<Value>, Option<Vec<u8>>) =
        sqlx::query_as("SELECT connector, connector_secret FROM geoimport.imports WHERE id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(spec.unwrap(), json!({"provider": "mysql", "table": "t"}));
    assert_eq!(secret, None, "the sealed connection is forgotten when the import ends");

    let wrong = format!("Wr0ng-{}", Uuid::new_v4().simple());
    let closed = crate::common::closed_port();
    let cases = [
        (conn(&user, &wrong, &db.name), json!("t"), "authentication failed"),
        (conn(&user, &password, "gi_no_such_database"), json!("t"), "unknown database"),
        (conn(&user, &password, &db.name), json!("no_such_table"), "unknown table"),
        (
            json!({"server": "no-such-host.invalid", "database": db.name, "username": user, "password": password}),
            json!("t"),
            "does not resolve",
        ),
        (
            json!({"server": host, "port": closed.port, "database": db.name, "username": user, "password": password}),
            json!("t"),
            "nothing accepts connections",
        ),
    ];
    for (connection, table, expected) in cases {
        let status = import(&app, &u, json!({"provider": "mysql", "connection": connection, "table": table})).await;
        assert_eq!(status["state"], "failure", "{status:#}");
        assert_eq!(status["error_code"], 1500);
        assert_eq!(status["get_error_text"]["title"], "Connector error");
        let text = status.to_string();
        assert!(text.contains(expected), "expected '{expected}' in {status:#}");
        assert!(!text.contains(&password) && !text.contains(&wrong), "a password leaked: {status:#}");
    }
    let status = import(
        &app,
        &u,
        json!({"provider": "mysql", "connection": conn(&user, &password, &db.name), "sql_query": "SELEC nonsense", "import_as": "x"}),
    )
    .await;
    assert!(status["get_error_text"]["what_about"].as_str().unwrap().contains("query error"), "{status:#}");
    // A query may not write, even as a user who may: the read runs in a read-only transaction.
    let (_, _, admin, admin_password) = server();
    let status = import(
        &app,
        &u,
        json!({"provider": "mysql", "connection": conn(&admin, &admin_password, &db.name), "sql_query": "DELETE FROM t", "import_as": "x"}),
    )
    .await;
    assert_eq!(status["state"], "failure");
    let why = status["get_error_text"]["what_about"].as_str().unwrap();
    assert!(why.to_ascii_uppercase().contains("READ ONLY"), "{status:#}");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM t").fetch_one(&mut db.conn().await).await.unwrap();
    assert_eq!(rows, 1);

    let rows_with_secrets: i64 =
        app.count("SELECT count(*) FROM geoimport.imports WHERE connector_secret IS NOT NULL").await;
    assert_eq!(rows_with_secrets, 0);
    let logs = logs::text();
    let this_failure = status["id"].as_str().unwrap();
    assert!(logs.lines().any(|l| l.contains(this_failure) && l.contains("import failed")), "the failures were logged");
    assert!(!logs.contains(&password) && !logs.contains(&wrong), "a password reached the logs");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_requests_are_refused_at_once() {
    let db = TestMysql::create("CREATE TABLE t (a INT);").await;
    let app = app().await;
    let u = app.create_user("hal").await;
    let cases = [
        (json!("not an object"), "JSON object"),
        (json!({"connection": {}}), "no provider"),
        (json!({"provider": "oracle", "table": "t"}), "not a connector provider"),
        (json!({"provider": "mysql", "table": "t"}), "no connection"),
        (connector(&db, json!({})), "either a table"),
        (connector(&db, json!({"sql_query": "select 1"})), "import_as"),
        (connector(&db, json!({"table": "t", "colour": "blue"})), "unknown connector parameters: colour"),
        (
            json!({"provider": "mysql", "connection": {"server": "127.0.0.1"}, "table": "t"}),
            "missing connection parameters",
        ),
        (connector(&db, json!({"table": "t", "encoding": "klingon"})), "encoding"),
        (
            connector(&db, json!({"table": "t", "columns": "a int); drop table x; --"})),
            "not a type columns may ask for",
        ),
    ];
    for (c, expected) in cases {
        let resp = post(&app, &u, &json!({ "connector": c })).await;
        assert_eq!(resp.status(), 400, "{c}");
        let body: Value = resp.json().await.unwrap();
        let message = body["errors"]["imports"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "expected '{expected}' in {body}");
    }
    // A server on a private address is refused unless the administrator allows it.
    let strict = TestApp::start().await;
    let v = strict.create_user("ian").await;
    let resp = post(&strict, &v, &json!({ "connector": connector(&db, json!({"table": "t"})) })).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(body["errors"]["imports"].as_str().unwrap().contains("GEOIMPORT_CONNECTOR_ALLOW"), "{body}");
    assert_eq!(app.count("SELECT count(*) FROM geoimport.imports").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_encoding_parameter_reads_text_stored_in_another_encoding() {
    // UTF-8 bytes stored in a latin1 column: the classic double-encoding mistake.
    let db = TestMysql::create(
        "CREATE TABLE names (id INT, name VARCHAR(20) CHARACTER SET latin1);
         INSERT INTO names VALUES (1, CONVERT(X'5365c3b16f72' USING latin1));",
    )
    .await;
    let app = app().await;
    let u = app.create_user("joe").await;
    import_ok(&app, &u, connector(&db, json!({"table": "names", "import_as": "as_declared"}))).await;
    assert_eq!(app.texts("SELECT name FROM joe.as_declared").await, [Some("SeÃ±or".to_string())]);
    import_ok(&app, &u, connector(&db, json!({"table": "names", "encoding": "UTF8", "import_as": "fixed"}))).await;
    assert_eq!(app.texts("SELECT name FROM joe.fixed").await, [Some("Señor".to_string())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn columns_choose_and_retype_what_is_imported() {
    let db = TestMysql::create(
        "CREATE TABLE wide (a INT, b VARCHAR(5), c DOUBLE);
         INSERT INTO wide VALUES (1, '42', 1.5);",
    )
    .await;
    let app = app().await;
    let u = app.create_user("kim").await;
    import_ok(&app, &u, connector(&db, json!({"table": "wide", "columns": "c, B integer"}))).await;
    let names: Vec<(String, String)> = app.columns("kim", "wide").await.into_iter().skip(3).collect();
    assert_eq!(names, [("c".to_string(), "double precision".to_string()), ("b".to_string(), "integer".to_string())]);
    let status = import(&app, &u, connector(&db, json!({"table": "wide", "columns": "zzz"}))).await;
    assert!(status["get_error_text"]["what_about"].as_str().unwrap().contains("no column 'zzz'"), "{status:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connector_synchronization_reimports_the_table_on_schedule() {
    let db = TestMysql::create("CREATE TABLE cities (name VARCHAR(20), latitude DOUBLE, longitude DOUBLE);\nINSERT INTO cities VALUES ('Madrid', 40.4168, -3.7038);").await;
    let app = app().await;
    let u = app.create_user("liz").await;
    let password = format!("Sync-{}", Uuid::new_v4().simple());
    let reader = db.reader(&password).await;
    let (host, port, _, _) = server();
    let body = json!({
        "connector": {"provider": "mysql", "connection": {"server": host, "port": port, "database": db.name,
                      "username": reader, "password": password}, "table": "cities"},
        "interval": 900,
    });
    let sync_url = app.url(&format!("/api/v1/synchronizations?api_key={}", u.key));
    let resp = app.client.post(&sync_url).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["interval"], 900);
    assert_eq!(created["service_name"], "connector");
    assert_eq!(created["url"], Value::Null);
    let item: Value = serde_json::from_str(created["service_item_id"].as_str().unwrap()).unwrap();
    assert_eq!(item, json!({"provider": "mysql", "table": "cities"}));
    assert!(!created.to_string().contains(&password));
    let sync_id = created["id"].as_str().unwrap().to_string();
    let first: Uuid = created["data_import"]["item_queue_id"].as_str().unwrap().parse().unwrap();
    let status = app.wait_final(&u, first).await;
    assert_eq!(status["state"], "complete", "{status:#}");
    assert_eq!(status["synchronization_id"], sync_id);
    assert_eq!(app.count("SELECT count(*) FROM liz.cities WHERE the_geom IS NOT NULL").await, 1);

    // The sync keeps its connection sealed; the finished run's copy is gone.
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT connector_secret FROM geoimport.synchronizations WHERE id = $1::uuid")
            .bind(&sync_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(!sealed.windows(password.len()).any(|w| w == password.as_bytes()));
    assert_eq!(app.count("SELECT count(*) FROM geoimport.imports WHERE connector_secret IS NOT NULL").await, 0);

    // A new row at the source appears at the next run (no change detection: every run re-imports).
    db.run("INSERT INTO cities VALUES ('Sevilla', 37.3891, -5.9845);").await;
    sqlx::query("UPDATE geoimport.synchronizations SET run_at = now() WHERE id = $1::uuid")
        .bind(&sync_id)
        .execute(&app.pool)
        .await
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        let sync: Value = app
            .client
            .get(app.url(&format!("/api/v1/synchronizations/{sync_id}?api_key={}", u.key)))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if sync["log_id"] != first.to_string() && sync["state"] == "success" {
            break;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "the sync never ran again: {sync}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        app.texts("SELECT name FROM liz.cities ORDER BY name").await,
        [Some("Madrid".into()), Some("Sevilla".into())]
    );
    assert_eq!(app.tables_of("liz").await, ["cities"]);
    let resp = app.client.post(&sync_url).json(&json!({"connector": {"provider": "mysql"}})).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.json::<Value>().await.unwrap()["errors"].as_str().unwrap().contains("no connection"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_with_another_secret_key_fails_the_import_and_says_why() {
    let db = TestMysql::create("CREATE TABLE t (a INT);").await;
    logs::capture();
    // The API seals with the key configured here; the only workers run with another one.
    let key = geoimport::connector::seal::SecretKey::generate();
    let api_key = key.clone();
    let app = TestApp::start_with(move |s| {
        s.runtime.workers = 0;
        s.runtime.secret_key = Some(api_key);
        allow_local_connectors(s);
    })
    .await;
    assert!(!app.data_dir.join("secret.key").exists(), "a configured key is used, none is generated");
    let u = app.create_user("max").await;
    let resp = post(&app, &u, &json!({ "connector": connector(&db, json!({"table": "t"})) })).await;
    assert_eq!(resp.status(), 200);
    let id: Uuid = resp.json::<Value>().await.unwrap()["item_queue_id"].as_str().unwrap().parse().unwrap();
    let workers = app.spawn_workers(|s| s.runtime.secret_key = Some(geoimport::connector::seal::SecretKey::generate()));
    let status = app.wait_final(&u, id).await;
    workers.stop().await;
    assert_eq!(status["error_code"], 1500);
    assert!(status["get_error_text"]["what_about"].as_str().unwrap().contains("GEOIMPORT_SECRET_KEY"), "{status:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_cartodb_id_is_kept_and_wkb_in_a_blob_is_a_geometry() {
    let db = TestMysql::create(
        "CREATE TABLE kept (cartodb_id INT, wkb_geometry BLOB);
         INSERT INTO kept VALUES (10, ST_AsWKB(POINT(1, 2))), (20, NULL);
         CREATE TABLE repeated (cartodb_id BIGINT UNSIGNED, v INT);
         INSERT INTO repeated VALUES (7, 1), (7, 2);",
    )
    .await;
    let app = app().await;
    let u = app.create_user("ned").await;
    let status = import_ok(&app, &u, connector(&db, json!({"table": "kept"}))).await;
    assert_eq!(status["warnings"], Value::Null);
    assert_eq!(
        app.texts("SELECT cartodb_id || ' ' || coalesce(ST_AsText(the_geom), '-') FROM ned.kept ORDER BY 1").await,
        [Some("10 POINT(1 2)".into()), Some("20 -".into())]
    );
    let names: Vec<String> = app.columns("ned", "kept").await.into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["cartodb_id", "the_geom", "the_geom_webmercator"]);
    // New rows continue after the kept ids.
    assert_eq!(app.count("SELECT nextval(pg_get_serial_sequence('ned.kept', 'cartodb_id'))").await, 21);

    let status = import_ok(&app, &u, connector(&db, json!({"table": "repeated"}))).await;
    assert_eq!(status["warnings"]["cartodb_id_renumbered"], "cartodb_id_original");
    assert_eq!(
        app.texts("SELECT cartodb_id || ':' || cartodb_id_original FROM ned.repeated ORDER BY v").await,
        [Some("1:7".into()), Some("2:7".into())]
    );
}
