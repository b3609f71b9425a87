//! The source's time zone made explicit. A binary of its own: it changes the MariaDB server's global time
//! zone, which the other connector tests must not see while they run.

#[path = "it/common/mod.rs"]
#[allow(dead_code, unused_imports)]
mod common;

use common::mysql::{TestMysql, admin_url, server};
use common::*;
use serde_json::{Value, json};
use sqlx::mysql::MySqlConnection;
use sqlx::{AssertSqlSafe, Connection};
use uuid::Uuid;

async fn set_global_zone(zone: &str) {
    let mut admin = MySqlConnection::connect(&admin_url()).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!("SET GLOBAL time_zone = '{zone}'"))).execute(&mut admin).await.unwrap();
}

/// Puts the server's zone back however the test ends.
struct RestoreZone;

impl Drop for RestoreZone {
    fn drop(&mut self) {
        let _ = std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(set_global_zone("SYSTEM"));
        })
        .join();
    }
}

#[tokio::test]
async fn datetimes_are_read_in_the_source_servers_zone_and_timestamps_stay_instants() {
    let _restore = RestoreZone;
    set_global_zone("+02:00").await;
    // Written by a client of that server: '12:00' local time, i.e. 10:00 UTC, in both columns.
    let db = TestMysql::create(
        "SET time_zone = '+02:00';
         CREATE TABLE events (name VARCHAR(10), local_time DATETIME, instant TIMESTAMP NULL);
         INSERT INTO events VALUES ('launch', '2024-03-01 12:00:00', '2024-03-01 12:00:00');",
    )
    .await;
    let app = TestApp::start_with(allow_local_connectors).await;
    let u = app.create_user("tz").await;
    let (host, port, username, password) = server();
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/imports/?api_key={}", u.key)))
        .json(&json!({"connector": {"provider": "mysql", "connection": {"server": host, "port": port,
            "database": db.name, "username": username, "password": password}, "table": "events"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id: Uuid = resp.json::<Value>().await.unwrap()["item_queue_id"].as_str().unwrap().parse().unwrap();
    let status = app.wait_final(&u, id).await;
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
