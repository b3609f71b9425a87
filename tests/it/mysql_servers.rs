//! MySQL sources as servers differ: the time zone made explicit, and TLS when the server offers it.
//!
//! DATETIME values are wall-clock times of the MariaDB server's zone and become instants; TIMESTAMP values
//! are instants already. Each test runs a MariaDB server of its own, in the zone or with the TLS it needs
//! (the machine's shared server, and its settings, are left alone).

use crate::common::mysql::{TestMysql, server_of};
use crate::common::private_mariadb::PrivateMariadb;
use crate::common::*;
use serde_json::{Value, json};
use sqlx::Connection;

/// Imports table `events` of `db` on `source` through the connector; returns the final status.
async fn import_events(app: &TestApp, user: &TestUser, source: &PrivateMariadb, db: &TestMysql) -> Value {
    let (host, port, username, password) = server_of(&source.url());
    app.import_json(
        user,
        &json!({"connector": {"provider": "mysql", "connection": {"server": host, "port": port,
            "database": db.name, "username": username, "password": password}, "table": "events"}}),
    )
    .await
}

const EVENTS: &str = "CREATE TABLE events (name VARCHAR(10), local_time DATETIME, instant TIMESTAMP NULL);
     INSERT INTO events VALUES ('launch', '2024-03-01 12:00:00', '2024-03-01 12:00:00');";

/// Table `events` on `source`: noon on a winter day and on a summer day, as DATETIMEs.
async fn noon_in_each_season(source: &PrivateMariadb) -> TestMysql {
    TestMysql::create_on(
        &source.url(),
        "CREATE TABLE events (name VARCHAR(10), local_time DATETIME);
         INSERT INTO events VALUES ('winter', '2024-03-01 12:00:00'), ('summer', '2024-07-01 12:00:00');",
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn datetimes_are_read_in_the_source_servers_offset_and_timestamps_stay_instants() {
    let source = PrivateMariadb::start("UTC");
    // Written by a client of a server at +02:00: '12:00' local time, i.e. 10:00 UTC, in both columns.
    let mut admin = sqlx::mysql::MySqlConnection::connect(&source.url()).await.unwrap();
    sqlx::raw_sql("SET GLOBAL time_zone = '+02:00'").execute(&mut admin).await.unwrap();
    let db = TestMysql::create_on(&source.url(), &format!("SET time_zone = '+02:00';\n{EVENTS}")).await;
    let app = TestApp::start_with(allow_local_connectors).await;
    let u = app.create_user("tz").await;
    let status = import_events(&app, &u, &source, &db).await;
    assert_eq!(status["state"], "complete", "{status:#}");
    assert_eq!(app.column_type("tz", "events", "local_time").await, "timestamp with time zone");
    assert_eq!(
        app.texts(
            "SELECT to_char(local_time AT TIME ZONE 'UTC', 'HH24:MI') || ' ' || to_char(instant AT TIME ZONE 'UTC', 'HH24:MI') \
             FROM tz.events"
        )
        .await,
        [Some("10:00 10:00".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn datetimes_of_a_named_zone_follow_its_rules() {
    // A server whose time_zone names Paris's zone, rules and all.
    let source = PrivateMariadb::start("UTC");
    source.load_zone("Europe/Paris");
    let mut admin = sqlx::mysql::MySqlConnection::connect(&source.url()).await.unwrap();
    sqlx::raw_sql("SET GLOBAL time_zone = 'Europe/Paris'").execute(&mut admin).await.unwrap();
    let db = noon_in_each_season(&source).await;
    let app = TestApp::start_with(allow_local_connectors).await;
    let u = app.create_user("tz").await;
    let status = import_events(&app, &u, &source, &db).await;
    assert_eq!(status["state"], "complete", "{status:#}");
    assert!(status["warnings"].get("datetimes_in_unknown_zone").is_none(), "{status:#}");
    assert_eq!(app.column_type("tz", "events", "local_time").await, "timestamp with time zone");
    // Noon in Paris is 11:00 UTC in winter and 10:00 UTC in summer.
    assert_eq!(
        app.texts("SELECT to_char(local_time AT TIME ZONE 'UTC', 'HH24:MI') FROM tz.events ORDER BY local_time").await,
        [Some("11:00".to_string()), Some("10:00".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn datetimes_of_a_zone_postgresql_does_not_know_stay_wall_clock_times_and_the_status_says_so() {
    // A POSIX rule: three hours east of UTC, under a name no zone database has.
    let source = PrivateMariadb::start("XYZ-3");
    let db = TestMysql::create_on(&source.url(), EVENTS).await;
    let app = TestApp::start_with(allow_local_connectors).await;
    let u = app.create_user("tz").await;
    let status = import_events(&app, &u, &source, &db).await;
    assert_eq!(status["state"], "complete", "{status:#}");
    assert_eq!(status["warnings"]["datetimes_in_unknown_zone"], json!({"local_time": "XYZ"}), "{status:#}");
    assert_eq!(app.column_type("tz", "events", "local_time").await, "timestamp without time zone");
    assert_eq!(
        app.texts("SELECT to_char(local_time, 'HH24:MI') || ' ' || to_char(instant AT TIME ZONE 'UTC', 'HH24:MI') FROM tz.events")
            .await,
        [Some("12:00 12:00".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mysql_source_that_offers_tls_is_read_over_tls() {
    let query =
        "SELECT VARIABLE_VALUE AS cipher FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'";
    let app = TestApp::start_with(allow_local_connectors).await;
    let u = app.create_user("tls").await;
    for (source, table, encrypted) in
        [(PrivateMariadb::start_with_tls(), "with_tls", true), (PrivateMariadb::start("UTC"), "without", false)]
    {
        let db = TestMysql::create_on(&source.url(), "CREATE TABLE t (a INT);").await;
        let (host, port, username, password) = server_of(&source.url());
        let status = app
            .import_json(
                &u,
                &json!({"connector": {"provider": "mysql", "connection": {"server": host, "port": port,
                    "database": db.name, "username": username, "password": password},
                    "sql_query": query, "import_as": table}}),
            )
            .await;
        assert_eq!(status["state"], "complete", "{status:#}");
        let cipher = app.texts(&format!("SELECT coalesce(cipher, '') FROM tls.{table}")).await;
        assert_eq!(cipher.len(), 1);
        assert_eq!(cipher[0].as_deref().is_some_and(|c| !c.is_empty()), encrypted, "{table}: {cipher:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_system_zone_known_by_its_abbreviation_only_is_taken_as_that_fixed_offset() {
    // A server left at SYSTEM in Paris: MariaDB reports "CET", which PostgreSQL reads as UTC+1 all year.
    let source = PrivateMariadb::start("Europe/Paris");
    let db = noon_in_each_season(&source).await;
    let app = TestApp::start_with(allow_local_connectors).await;
    let u = app.create_user("tz").await;
    let status = import_events(&app, &u, &source, &db).await;
    assert_eq!(status["state"], "complete", "{status:#}");
    // As the README warns: summer times are an hour off; a named time_zone avoids it (the test above).
    assert_eq!(
        app.texts("SELECT to_char(local_time AT TIME ZONE 'UTC', 'HH24:MI') FROM tz.events ORDER BY local_time").await,
        [Some("11:00".to_string()), Some("11:00".to_string())]
    );
}
