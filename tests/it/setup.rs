//! Starting up: migrations and PostGIS creation when several processes start together, and a clear
//! message when the database cannot have PostGIS.

use crate::common::*;
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

#[tokio::test(flavor = "multi_thread")]
async fn processes_starting_together_migrate_once_without_errors() {
    let db = TestDb::create().await;
    let mut starts = Vec::new();
    for _ in 0..4 {
        let url = db.url.clone();
        starts.push(tokio::spawn(async move {
            let pool = PgPoolOptions::new().max_connections(2).connect(&url).await.unwrap();
            geoimport::db::prepare(&pool).await.map_err(|e| e.to_string())
        }));
    }
    for s in starts {
        s.await.unwrap().expect("a concurrent start failed");
    }
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let postgis: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(postgis, 1);
    let applied: i64 =
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success").fetch_one(&mut conn).await.unwrap();
    assert_eq!(applied as usize, geoimport::db::MIGRATOR.iter().count());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_that_cannot_create_postgis_gets_told_what_to_do() {
    let db = TestDb::create().await;
    let role = format!("gi_weak_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&db.url).await.unwrap();
    sqlx::query(AssertSqlSafe(format!("CREATE ROLE {role} LOGIN"))).execute(&mut admin).await.unwrap();
    sqlx::query(AssertSqlSafe(format!("GRANT CREATE ON DATABASE {} TO {role}", db.name)))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut weak_url = url::Url::parse(&db.url).unwrap();
    weak_url.set_username(&role).unwrap();
    weak_url.set_password(None).unwrap();
    let store = geoimport::db::StoreOptions {
        database_url: Some(weak_url.to_string()),
        data_dir: std::env::temp_dir(),
        allow_superuser: false,
        embedded_pg_user: "postgres".into(),
    };
    let result = geoimport::db::Database::open(&store, 2, None).await;
    let message = result.err().map(|e| e.to_string()).unwrap_or_default();
    // drop the role before asserting, so a failure leaves nothing behind
    drop(admin);
    let mut admin = PgConnection::connect(&admin_url()).await.unwrap();
    sqlx::query(AssertSqlSafe(format!("DROP DATABASE {} WITH (FORCE)", db.name))).execute(&mut admin).await.unwrap();
    sqlx::query(AssertSqlSafe(format!("DROP ROLE {role}"))).execute(&mut admin).await.unwrap();
    assert!(message.contains("CREATE EXTENSION postgis"), "unhelpful message: {message}");
}
