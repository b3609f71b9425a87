//! CARTO's own Python SDK (`carto==1.11.3`, from PyPI) against the server, unchanged: it uploads a file,
//! imports a URL, sees a failing file fail with its code, lists imports, imports through a connector and
//! creates a sync table that succeeds. The SDK runs in the venv scripts/test makes; tests/it/sdk/drive.py
//! is what its users would write.

use serde_json::json;
use uuid::Uuid;

use crate::common::fixture::Fixture;
use crate::common::mysql::{TestMysql, server};
use crate::common::python::{run_json_script, venv_python};
use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn carto_s_python_sdk_works_unchanged() {
    let python = venv_python("GEOIMPORT_TEST_SDK_PYTHON", "carto-sdk-venv", "carto", "carto==1.11.3 six");
    let fx = Fixture::start().await;
    let db = TestMysql::create(
        "CREATE TABLE towns (name VARCHAR(20), lat DOUBLE, lon DOUBLE);\n\
                                INSERT INTO towns VALUES ('Soria', 41.76, -2.46), ('Teruel', 40.34, -1.1);",
    )
    .await;
    // Queued first, on a server without workers, and not due for an hour: the SDK's list must show it.
    let app = TestApp::start_with(|s| {
        allow_local_connectors(s);
        s.runtime.url_allow = vec!["127.0.0.1/32".parse().unwrap()];
        s.runtime.workers = 0;
    })
    .await;
    let u = app.create_user("sdk").await;
    let waiting = app.import(&u, "waiting.csv", "a\n1\n", "").await;
    app.postpone(waiting).await;
    let workers = app.spawn_workers(|_| {});

    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("places.csv");
    std::fs::write(&csv, "name,lat,lon\nA,40.4,-3.7\nB,41.4,2.2\n").unwrap();
    let bad = dir.path().join("broken.shp");
    std::fs::write(&bad, b"\x00\x01\x02 not a shapefile").unwrap();
    let (host, port, username, password) = server();
    let args = json!({
        "base_url": app.url("/user/sdk/"),
        "api_key": u.key,
        "csv_path": csv,
        "bad_path": bad,
        "url": fx.url("/data/sample.csv"),
        "sync_url": fx.url("/sync.csv"),
        "connector": {"provider": "mysql", "connection": {"server": host, "port": port, "database": db.name,
            "username": username, "password": password}, "table": "towns"},
    });
    let seen = run_json_script(&python, "tests/it/sdk/drive.py", &args, std::time::Duration::from_secs(300)).await;
    for (step, result) in seen.as_object().unwrap() {
        assert!(result.get("exception").is_none(), "{step}: {result}");
    }

    assert_eq!(
        (seen["upload"]["state"].as_str(), seen["upload"]["table_name"].as_str()),
        (Some("complete"), Some("places"))
    );
    assert_eq!(app.count("SELECT count(*) FROM sdk.places WHERE GeometryType(the_geom) = 'POINT'").await, 2);
    assert_eq!(seen["url"]["state"], "complete", "{seen:#}");
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM sdk.{}", seen["url"]["table_name"].as_str().unwrap())).await,
        3
    );
    // The failing file: the SDK reads its code; the status gives the reference's title and our explanation.
    assert_eq!(seen["failing"]["state"], "failure");
    let failed: Uuid = seen["failing"]["id"].as_str().unwrap().parse().unwrap();
    let (_, status) = app.status(&u, failed).await;
    assert_eq!(seen["failing"]["error_code"], status["error_code"]);
    assert!(status["error_code"].as_i64().is_some_and(|c| c != 99999), "{status:#}");
    assert!(status["get_error_text"]["title"].as_str().is_some_and(|t| !t.is_empty()), "{status:#}");
    // The list: the import under way, and none of the empty requests the SDK sends before each real one.
    assert_eq!(seen["list"], json!([waiting.to_string()]), "{seen:#}");
    assert_eq!(seen["connector"]["state"], "complete", "{seen:#}");
    assert_eq!(app.count("SELECT count(*) FROM sdk.towns WHERE the_geom IS NOT NULL").await, 2);
    assert_eq!(seen["sync"]["state"], "success", "{seen:#}");
    assert_eq!(app.tables_of("sdk").await, ["places", "sample", "sync", "towns"]);
    workers.stop().await;
}
