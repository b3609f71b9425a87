//! Databases of the tests: each test creates its own, with a role of its own, and drops them at the end.

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use uuid::Uuid;

pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn url_for(db: &str) -> String {
    let admin = admin_url();
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b.to_string(), format!("?{q}")),
        None => (admin.clone(), String::new()),
    };
    let base = base.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(base);
    format!("{base}/{db}{query}")
}

/// A database of this test's own, dropped (with any connection still open) when the test ends. A server
/// works in it as a role of the test's own, with no privilege beyond its database (as in production: the
/// server refuses a superuser).
pub struct TestDb {
    pub name: String,
    pub url: String,
    /// The role that owns the database, dropped with it.
    role: Option<String>,
}

impl TestDb {
    /// A database the admin owns, without PostGIS (for tests of the setup itself).
    pub async fn create() -> TestDb {
        let name = format!("gi_test_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url()).await.expect("connect to the test PostgreSQL");
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.expect("create db");
        admin.close().await.ok();
        TestDb { url: url_for(&name), name, role: None }
    }

    /// A database owned by a role of its own (no superuser), with PostGIS created by the admin: what an
    /// operator gives geoimport.
    pub async fn create_for_app() -> TestDb {
        let name = format!("gi_test_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url()).await.expect("connect to the test PostgreSQL");
        let password = Uuid::new_v4().simple().to_string();
        for stmt in
            [format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'"), format!("CREATE DATABASE {name} OWNER {name}")]
        {
            sqlx::query(AssertSqlSafe(stmt)).execute(&mut admin).await.expect("create the role and database");
        }
        admin.close().await.ok();
        let mut conn = PgConnection::connect(&url_for(&name)).await.expect("connect to the new database");
        sqlx::query("CREATE EXTENSION postgis").execute(&mut conn).await.expect("create PostGIS");
        sqlx::query("CREATE EXTENSION postgis_raster").execute(&mut conn).await.expect("create PostGIS raster");
        conn.close().await.ok();
        let mut url = url::Url::parse(&url_for(&name)).expect("TEST_DATABASE_URL is a URL");
        url.set_username(&name).unwrap();
        url.set_password(Some(&password)).unwrap();
        TestDb { url: url.to_string(), name: name.clone(), role: Some(name) }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (name, role) = (self.name.clone(), self.role.clone());
        // Drop runs outside any runtime we may block; a thread of its own does the async work.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&admin_url()).await {
                    let _ = sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                        .execute(&mut admin)
                        .await;
                    if let Some(role) = role {
                        let _ =
                            sqlx::query(AssertSqlSafe(format!("DROP ROLE IF EXISTS {role}"))).execute(&mut admin).await;
                    }
                }
            });
        })
        .join();
    }
}
