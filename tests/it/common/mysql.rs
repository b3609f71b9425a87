//! A MariaDB/MySQL database of a test's own, dropped when the test ends: on TEST_MYSQL_URL (default
//! `mysql://root@127.0.0.1:3306`), or, when TEST_MYSQL_TZ names a time zone, on a private server of the
//! test process in that zone (how the suite shows it does not depend on the server's zone), or on a
//! private server a test starts itself ([`TestMysql::create_on`]).
//!
//! Setup statements run in a session at UTC, so that TIMESTAMP values mean the same instant whatever the
//! server's zone; DATETIME values are wall-clock times of the server's zone, and tests read them back
//! with [`wall_clock`].

use std::sync::OnceLock;

use sqlx::mysql::MySqlConnection;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};
use uuid::Uuid;

use super::private_mariadb::PrivateMariadb;

/// The admin URL of the MariaDB the connector tests use.
pub fn admin_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var("TEST_MYSQL_TZ") {
        Ok(tz) => {
            // Started on a thread that lives as long as the process: the server dies with its parent thread.
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let server = PrivateMariadb::start(&tz);
                tx.send(server.url()).unwrap();
                loop {
                    std::thread::park();
                }
            });
            rx.recv().expect("the private MariaDB of TEST_MYSQL_TZ started")
        }
        Err(_) => std::env::var("TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into()),
    })
    .clone()
}

/// Host, port, user and password of the test server, as a connector's `connection` names them.
pub fn server() -> (String, u16, String, String) {
    server_of(&admin_url())
}

/// Host, port, user and password of the server of `admin_url`.
pub fn server_of(admin_url: &str) -> (String, u16, String, String) {
    let url = url::Url::parse(admin_url).expect("TEST_MYSQL_URL is a URL");
    (
        url.host_str().unwrap_or("127.0.0.1").to_string(),
        url.port().unwrap_or(3306),
        url.username().to_string(),
        url.password().unwrap_or("").to_string(),
    )
}

/// A PostgreSQL expression that shows the `timestamptz` column `column` as the wall-clock time of the
/// test MariaDB's zone: a DATETIME imported right reads back as it was written.
pub async fn wall_clock(column: &str) -> String {
    let mut admin = MySqlConnection::connect(&admin_url()).await.expect("connect to the test MariaDB");
    let (zone, system): (String, String) =
        sqlx::query_as("SELECT @@global.time_zone, @@system_time_zone").fetch_one(&mut admin).await.unwrap();
    let zone = if zone.eq_ignore_ascii_case("SYSTEM") { system } else { zone };
    match zone.as_bytes().first() {
        // An offset: PostgreSQL would read '+02:00' as a POSIX zone (west positive), so it is added instead.
        Some(b'+' | b'-') => format!("((({column}) AT TIME ZONE 'UTC') + interval '{zone}')"),
        _ if zone.is_empty() => format!("(({column}) AT TIME ZONE 'UTC')"),
        _ => format!("(({column}) AT TIME ZONE '{zone}')"),
    }
}

pub struct TestMysql {
    pub name: String,
    admin_url: String,
}

impl TestMysql {
    /// Creates the database and runs `setup` in it (statements separated by `;` at line ends).
    pub async fn create(setup: &str) -> TestMysql {
        Self::create_on(&admin_url(), setup).await
    }

    /// The same, on the server of `admin_url`.
    pub async fn create_on(admin_url: &str, setup: &str) -> TestMysql {
        let name = format!("gi_test_{}", Uuid::new_v4().simple());
        let mut admin = MySqlConnection::connect(admin_url).await.expect("connect to the test MariaDB");
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name} CHARACTER SET utf8mb4")))
            .execute(&mut admin)
            .await
            .unwrap();
        let db = TestMysql { name, admin_url: admin_url.to_string() };
        db.run(setup).await;
        db
    }

    /// Makes a user named after the database, who may read it with `password`.
    pub async fn reader(&self, password: &str) -> String {
        // Statement logging off: the statement holds the password, and tests check the logs for it.
        let options: sqlx::mysql::MySqlConnectOptions = self.admin_url.parse().unwrap();
        let mut admin = options.log_statements(log::LevelFilter::Off).connect().await.unwrap();
        let name = &self.name;
        for sql in [
            format!("CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'"),
            format!("GRANT SELECT ON {name}.* TO '{name}'@'%'"),
        ] {
            sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut admin).await.unwrap();
        }
        name.clone()
    }

    pub async fn conn(&self) -> MySqlConnection {
        MySqlConnection::connect(&format!("{}/{}", self.admin_url, self.name)).await.unwrap()
    }

    /// Runs statements one at a time (each ends with `;` at the end of a line), in a session at UTC.
    pub async fn run(&self, sql: &str) {
        let mut conn = self.conn().await;
        sqlx::raw_sql("SET time_zone = '+00:00'").execute(&mut conn).await.unwrap();
        for statement in sql.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
            let statement = statement.trim_end_matches(';');
            sqlx::raw_sql(AssertSqlSafe(statement.to_string()))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
    }
}

impl Drop for TestMysql {
    fn drop(&mut self) {
        let (name, admin_url) = (self.name.clone(), self.admin_url.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                if let Ok(mut admin) = MySqlConnection::connect(&admin_url).await {
                    let _ = sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                        .execute(&mut admin)
                        .await;
                    // A user a test may have made, named after its database.
                    let _ = sqlx::raw_sql(AssertSqlSafe(format!("DROP USER IF EXISTS '{name}'@'%'")))
                        .execute(&mut admin)
                        .await;
                }
            });
        })
        .join();
    }
}
