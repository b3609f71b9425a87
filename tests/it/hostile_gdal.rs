//! Threat: an uploaded file that GDAL reads names other files or URLs (an OGR VRT, a MapInfo seamless
//! table, a GML schema, a KML network link), to make the server read what its owner may not (the server's
//! disk, another tenant's upload, the internal network). GDAL must read the uploaded file and nothing else.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::*;
use tokio::io::AsyncWriteExt;

/// A loopback server that counts the connections it gets, answering each with a small CSV.
struct Canary {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Canary {
    async fn start() -> Canary {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let body = "name,value\nstolen,1\n";
                let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                let _ = conn.write_all(answer.as_bytes()).await;
            }
        });
        Canary { port, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn vrt(source: &str) -> String {
    format!(
        "<OGRVRTDataSource><OGRVRTLayer name=\"leak\"><SrcDataSource>{source}</SrcDataSource>\
         <OpenOptions><OOI key=\"HEADERS\">NO</OOI></OpenOptions></OGRVRTLayer></OGRVRTDataSource>"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vrt_that_reads_a_file_elsewhere_on_the_server_is_refused_whatever_its_name() {
    let elsewhere = tempfile::tempdir().unwrap();
    let secret = elsewhere.path().join("secret.csv");
    std::fs::write(&secret, "user,password\nroot,hunter2\n").unwrap();
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let evil = vrt(&format!("CSV:{}", secret.display()));
    for name in ["innocent.vrt", "innocent.xml", "innocent.kml", "innocent.gml", "innocent"] {
        let status = app.import_and_wait(&u, name, evil.clone(), "").await;
        assert_eq!(status["state"], "failure", "{name}: {status:#}");
        assert_eq!(status["error_code"], 1002, "{name}: {status:#}");
        let about = status["get_error_text"]["what_about"].as_str().unwrap();
        assert!(about.contains("VRT"), "{name}: {about}");
        assert!(!status.to_string().contains("hunter2"));
    }
    // Inside an archive too.
    let zip = zip_of(&[("data/innocent.kml", evil.into_bytes())]);
    let status = app.import_and_wait(&u, "bundle.zip", zip, "").await;
    assert_eq!(status["error_code"], 1002, "{status:#}");
    assert!(app.tables_of("ana").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vrt_pointing_at_a_loopback_url_makes_no_request() {
    let canary = Canary::start().await;
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let evil = vrt(&format!("CSV:/vsicurl/http://127.0.0.1:{}/internal.csv", canary.port));
    let status = app.import_and_wait(&u, "innocent.xml", evil, "").await;
    assert_eq!(status["error_code"], 1002, "{status:#}");
    assert_eq!(canary.hits(), 0, "the reader reached the loopback server");
}

#[tokio::test(flavor = "multi_thread")]
async fn gml_schemas_and_kml_links_are_not_fetched_and_the_data_still_imports() {
    let canary = Canary::start().await;
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let base = format!("http://127.0.0.1:{}", canary.port);
    let gml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<wfs:FeatureCollection xmlns:wfs="http://www.opengis.net/wfs" xmlns:gml="http://www.opengis.net/gml"
  xmlns:ms="http://example.com/ms" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://example.com/ms {base}/wfs?SERVICE=WFS&amp;REQUEST=DescribeFeatureType&amp;TYPENAME=places">
  <gml:featureMember><ms:places><ms:name>Sol</ms:name>
    <ms:geom><gml:Point srsName="EPSG:4326"><gml:coordinates>-3.70,40.41</gml:coordinates></gml:Point></ms:geom>
  </ms:places></gml:featureMember>
</wfs:FeatureCollection>"#
    );
    let status = app.import_ok(&u, "places.gml", gml, "").await;
    assert_eq!(status["rows_imported"], 1, "{status:#}");
    let kml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document>
<NetworkLink><Link><href>{base}/more.kml</href></Link></NetworkLink>
<Style id="s"><IconStyle><Icon><href>{base}/icon.png</href></Icon></IconStyle></Style>
<Placemark><name>Sol</name><styleUrl>{base}/styles.kml#s</styleUrl><Point><coordinates>-3.70,40.41</coordinates></Point></Placemark>
</Document></kml>"#
    );
    let status = app.import_ok(&u, "linked.kml", kml, "").await;
    assert_eq!(status["rows_imported"], 1, "{status:#}");
    assert_eq!(canary.hits(), 0, "a reader fetched a schema or a link");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gdal_reader_has_no_network_at_all() {
    let canary = Canary::start().await;
    let fault = format!("net-{}:probe.gpx", canary.port);
    let app = TestApp::start_with(|s| s.runtime.hooks.gdal_fault = Some(fault)).await;
    let u = app.create_user("ana").await;
    let gpx = r#"<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">
<wpt lat="40.41" lon="-3.70"><name>Sol</name></wpt></gpx>"#;
    let status = app.import_and_wait(&u, "probe.gpx", gpx, "").await;
    let about = status["get_error_text"]["what_about"].as_str().unwrap();
    assert!(about.contains("the reader has no network"), "{about}");
    assert_eq!(canary.hits(), 0);
    // The same hook for another file proves the canary answers when reached (positive control).
    let reached = std::net::TcpStream::connect(("127.0.0.1", canary.port));
    assert!(reached.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mapinfo_seamless_table_that_points_at_other_tables_is_refused() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let seamless = "!table\n!version 300\n!charset WindowsLatin1\n\nDefinition Table\n  Type SEAMLESS\n  Fields 2\n    \
                    Table Char (100) ;\n    Description Char (25) ;\n";
    let status = app.import_and_wait(&u, "tiles.tab", seamless, "").await;
    assert_eq!(status["error_code"], 1002, "{status:#}");
    let about = status["get_error_text"]["what_about"].as_str().unwrap();
    assert!(about.contains("seamless"), "{about}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gdal_reader_sees_neither_the_keys_nor_other_users_uploads() {
    let app = TestApp::start_with(|s| s.runtime.hooks.gdal_fault = Some("peek:probe.gpx".into())).await;
    // The server makes its key when it starts serving.
    let start = std::time::Instant::now();
    while !app.data_dir.join("secret.key").exists() {
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "the server keeps its key in the data dir");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let other = uuid::Uuid::new_v4();
    std::fs::create_dir_all(app.data_dir.join(format!("staging/{other}"))).unwrap();
    std::fs::write(app.data_dir.join(format!("staging/{other}/theirs.csv")), "secret,data\n").unwrap();
    let u = app.create_user("ana").await;
    let gpx = r#"<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">
<wpt lat="40.41" lon="-3.70"><name>Sol</name></wpt></gpx>"#;
    let id = app.import(&u, "probe.gpx", gpx, "").await;
    let status = app.wait_final(&u, id).await;
    let about = status["get_error_text"]["what_about"].as_str().unwrap();
    assert!(about.contains("secret.key unreadable"), "{about}");
    assert!(!about.contains(&other.to_string()), "another user's upload was visible: {about}");
    assert!(about.contains(&id.to_string()), "the reader's own folder is visible: {about}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_user_namespaces_readers_still_read_and_the_log_says_so_once() {
    let gpx = r#"<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">
<wpt lat="40.4" lon="-3.7"><name>a</name></wpt></gpx>"#;
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;
    let server = crate::common::child_server::ChildServer::with_workers(
        &app,
        &[("GEOIMPORT_TEST_GDAL_FAULT", "no-namespaces:first.gpx,no-namespaces:second.gpx")],
    )
    .await;
    for name in ["first.gpx", "second.gpx"] {
        let id = app.import(&u, name, gpx, "").await;
        assert_eq!(app.wait_final(&u, id).await["state"], "complete", "{name}");
    }
    let warned = server.log.lines().iter().filter(|l| l.contains("cannot get a network namespace")).count();
    assert_eq!(warned, 1, "{:?}", server.log.lines());
}
