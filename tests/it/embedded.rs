//! With no DATABASE_URL, `serve` makes and runs its own PostgreSQL under the data directory, and
//! `user create` finds the same database.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::common::*;
use nix::sys::signal::Signal;

#[tokio::test(flavor = "multi_thread")]
async fn serve_runs_on_an_embedded_cluster_that_user_create_shares() {
    let dir = tempfile::tempdir().unwrap();
    // As root the cluster runs as the postgres user, which must be able to enter the directory.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    let env = vec![
        ("GEOIMPORT_DATA_DIR".to_string(), data.display().to_string()),
        ("GEOIMPORT_LOG_FORMAT".to_string(), "text".to_string()),
    ];
    let Served { process: mut server, port, .. } = ChildProcess::serve(&env).await;
    let base = format!("http://127.0.0.1:{port}");
    let client = http_client();
    let start = std::time::Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "the embedded server never became ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(data.join("postgres/PG_VERSION").exists());

    let out = std::process::Command::new(geoimport_bin())
        .args(["user", "create", "emma", "--json"])
        .env("GEOIMPORT_DATA_DIR", &data)
        .env("GEOIMPORT_LOG_FORMAT", "text")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let last = String::from_utf8(out.stdout).unwrap().lines().last().unwrap().to_string();
    let created: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(created["username"], "emma");
    let user = TestUser {
        id: created["id"].as_str().unwrap().parse().unwrap(),
        name: "emma".into(),
        key: created["api_key"].as_str().unwrap().to_string(),
    };

    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(prism_tour_csv().as_bytes().to_vec()).file_name("prism_tour.csv"),
    );
    let resp =
        client.post(format!("{base}/api/v1/imports/?api_key={}", user.key)).multipart(form).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let id = resp.json::<serde_json::Value>().await.unwrap()["item_queue_id"].as_str().unwrap().parse().unwrap();
    let status = wait_final_at(&client, &base, &user, id, Duration::from_secs(60)).await;
    assert_eq!(status["state"], "complete", "{status}");
    assert_eq!(status["table_name"], "prism_tour");

    server.signal(Signal::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(30)).await);
    // the cluster was stopped with the server that started it
    assert!(!data.join("postgres/postmaster.pid").exists());
}
