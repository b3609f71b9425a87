//! A MariaDB/MySQL database of a test's own, on TEST_MYSQL_URL (default `mysql://root@127.0.0.1:3306`),
//! dropped when the test ends.

use sqlx::mysql::MySqlConnection;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};
use uuid::Uuid;

pub fn admin_url() -> String {
    std::env::var("TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// Host, port, user and password of the test server, as a connector's `connection` names them.
pub fn server() -> (String, u16, String, String) {
    let url = url::Url::parse(&admin_url()).expect("TEST_MYSQL_URL is a URL");
    (
        url.host_str().unwrap_or("127.0.0.1").to_string(),
        url.port().unwrap_or(3306),
        url.username().to_string(),
        url.password().unwrap_or("").to_string(),
    )
}

pub struct TestMysql {
    pub name: String,
}

impl TestMysql {
    /// Creates the database and runs `setup` in it (statements separated by `;` at line ends).
    pub async fn create(setup: &str) -> TestMysql {
        let name = format!("gi_test_{}", Uuid::new_v4().simple());
        let mut admin = MySqlConnection::connect(&admin_url()).await.expect("connect to the test MariaDB");
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name} CHARACTER SET utf8mb4")))
            .execute(&mut admin)
            .await
            .unwrap();
        let db = TestMysql { name };
        db.run(setup).await;
        db
    }

    /// Makes a user named after the database, who may read it with `password`.
    pub async fn reader(&self, password: &str) -> String {
        // Statement logging off: the statement holds the password, and tests check the logs for it.
        let options: sqlx::mysql::MySqlConnectOptions = admin_url().parse().unwrap();
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
        MySqlConnection::connect(&format!("{}/{}", admin_url(), self.name)).await.unwrap()
    }

    /// Runs statements one at a time (each ends with `;` at the end of a line).
    pub async fn run(&self, sql: &str) {
        let mut conn = self.conn().await;
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
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                if let Ok(mut admin) = MySqlConnection::connect(&admin_url()).await {
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
