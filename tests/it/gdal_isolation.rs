//! GDAL reads in child processes: a crash or a runaway read fails its own import with a clear error, and
//! the worker goes on with the next one.

use crate::common::child_server::ChildServer;
use crate::common::*;

const GPX: &str = r#"<?xml version="1.0"?>
<gpx version="1.1" creator="geoimport tests" xmlns="http://www.topografix.com/GPX/1/1">
<wpt lat="40.41" lon="-3.70"><name>Madrid</name></wpt>
<wpt lat="48.85" lon="2.35"><name>Paris</name></wpt>
</gpx>"#;

fn xlsx() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("sheet.csv");
    std::fs::write(&csv, "name,lat,lon\nSol,40.41,-3.70\n").unwrap();
    let out = dir.path().join("book.xlsx");
    ogr2ogr(&["-f", "XLSX", &out.display().to_string(), &csv.display().to_string()]);
    std::fs::read(out).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gdal_crash_fails_only_its_own_import() {
    for (crashing, fine, bytes) in
        [("crash.gpx", "fine.gpx", GPX.as_bytes().to_vec()), ("crash.xlsx", "fine.xlsx", xlsx())]
    {
        let fault = format!("segv:{crashing}");
        let app = TestApp::start_with(|s| s.runtime.hooks.gdal_fault = Some(fault)).await;
        let u = app.create_user("ana").await;
        let id = app.import(&u, crashing, bytes.clone(), "").await;
        let status = app.wait_final(&u, id).await;
        assert_eq!(status["state"], "failure", "{status:#}");
        // A problem of the file, with its code (the reference's 2001), not 99999.
        assert_eq!(status["error_code"], 2001);
        let about = status["get_error_text"]["what_about"].as_str().unwrap();
        // Spreadsheets are read with calamine, in the same confined reader.
        let reader = if crashing.ends_with("gpx") { "GDAL" } else { "calamine" };
        assert!(about.contains(&format!("{reader} crashed")) && about.contains("SIGSEGV"), "{about}");
        // The same worker imports the next file.
        let status = app.import_ok(&u, fine, bytes, "").await;
        assert_eq!(status["rows_imported"], if crashing.ends_with("gpx") { 2 } else { 1 });
        assert_eq!(app.tables_of("ana").await.len(), 1);
        assert_eq!(app.staging_tables().await, Vec::<String>::new());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_past_its_memory_limit_fails_6666_and_others_fit() {
    let app = TestApp::start_with(|s| {
        s.runtime.gdal_memory_mb = 512;
        s.runtime.hooks.gdal_fault = Some("hog:greedy.gpx,gdal-oom:told.gpx,abort:broken.gpx".into());
    })
    .await;
    let u = app.create_user("ana").await;
    // Out of memory, whether the allocation aborts the reader or GDAL catches it and says so.
    for file in ["greedy.gpx", "told.gpx"] {
        let id = app.import(&u, file, GPX, "").await;
        let status = app.wait_final(&u, id).await;
        assert_eq!(status["error_code"], 6666, "{file}: {status:#}");
        let about = status["get_error_text"]["what_about"].as_str().unwrap();
        assert!(about.contains("512 MB"), "{about}");
    }
    // An abort that is not about memory is a crash, not a big dataset.
    let id = app.import(&u, "broken.gpx", GPX, "").await;
    let status = app.wait_final(&u, id).await;
    assert_eq!(status["error_code"], 2001, "{status:#}");
    assert!(status["get_error_text"]["what_about"].as_str().unwrap().contains("SIGABRT"));
    // The same limit leaves room for an ordinary read.
    assert_eq!(app.import_ok(&u, "modest.gpx", GPX, "").await["rows_imported"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_layer_too_wide_for_one_command_line_argument_imports() {
    // 1,500 columns with 60-character names: the layer's plan is larger than Linux allows in one argument.
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..1500).map(|i| format!("{:_<60}", format!("measurement_{i}"))).collect();
    let values: Vec<String> = (0..1500).map(|i| i.to_string()).collect();
    let csv = dir.path().join("wide.csv");
    std::fs::write(&csv, format!("{}\n{}\n", names.join(","), values.join(","))).unwrap();
    let gpkg = dir.path().join("wide.gpkg");
    ogr2ogr(&["-f", "GPKG", &gpkg.display().to_string(), &csv.display().to_string(), "-nln", "wide"]);
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let status = app.import_ok(&u, "wide.gpkg", std::fs::read(&gpkg).unwrap(), "").await;
    let table = status["table_name"].as_str().unwrap().to_string();
    assert_eq!(app.columns("ana", &table).await.len(), 1503);
}

/// GDAL readers of `file` still running, by their command line.
fn readers_of(file: &str) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|c| {
            let c = String::from_utf8_lossy(c);
            c.contains("gdal-read") && c.contains(file)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn readers_run_under_the_memory_and_processor_limits_configured_and_zero_means_no_memory_limit() {
    for (memory_mb, expected) in
        [(512, "address space 536870912, processor seconds 600"), (0, "address space unlimited, processor seconds 600")]
    {
        let app = TestApp::start_with(|s| {
            s.runtime.gdal_memory_mb = memory_mb;
            s.runtime.job_timeout_secs = 600;
            s.runtime.hooks.gdal_fault = Some("limits:told.gpx".into());
        })
        .await;
        let u = app.create_user("ana").await;
        let status = app.import_and_wait(&u, "told.gpx", GPX, "").await;
        let about = status["get_error_text"]["what_about"].as_str().unwrap_or_default();
        assert!(about.contains(expected), "{memory_mb} MB: {status:#}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_that_spins_is_stopped_by_its_processor_time_limit_not_the_wall_clock() {
    // The wall clock allows ten minutes; the reader may use two seconds of processor time.
    let app = TestApp::start_with(|s| {
        s.runtime.job_timeout_secs = 600;
        s.runtime.hooks.gdal_cpu_secs = Some(2);
        s.runtime.hooks.gdal_fault = Some("spin:spin.gpx".into());
    })
    .await;
    let u = app.create_user("ana").await;
    let started = std::time::Instant::now();
    let id = app.import(&u, "spin.gpx", GPX, "").await;
    let status = app.wait_final(&u, id).await;
    assert_eq!(status["error_code"], 6667, "{status:#}");
    let about = status["get_error_text"]["what_about"].as_str().unwrap();
    assert!(about.contains("2 seconds of processor time"), "{about}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "stopped after {:?}", started.elapsed());
    assert_eq!(readers_of("spin.gpx"), 0);
    // The worker goes on.
    assert_eq!(app.import_ok(&u, "after.gpx", GPX, "").await["state"], "complete");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_import_kills_its_reader_at_once() {
    let app = TestApp::start_with(|s| {
        s.runtime.job_timeout_secs = 2;
        s.runtime.hooks.gdal_fault = Some("slow:stalled.gpx,slow-rows:late.gpx,slow:stalled.xlsx".into());
    })
    .await;
    let u = app.create_user("ana").await;
    // Stalled while learning the layers, while writing rows, and while reading a sheet.
    for (file, bytes) in [("stalled.gpx", GPX.as_bytes().to_vec()), ("late.gpx", GPX.into()), ("stalled.xlsx", xlsx())]
    {
        let id = app.import(&u, file, bytes, "").await;
        let status = app.wait_final(&u, id).await;
        assert_eq!(status["error_code"], 6667, "{file}: {status:#}");
        // Stopping the import must not leave its reader behind.
        let start = std::time::Instant::now();
        while readers_of(file) > 0 {
            assert!(start.elapsed() < std::time::Duration::from_secs(3), "the reader of {file} outlived its import");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_reads_with_the_reader_beside_it_and_never_maps_gdal_itself() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;
    // As installed: no reader named, so the server starts `geoimport-gdal-read` from its own directory.
    let server = ChildServer::with_workers(&app, &[]).await;
    let id = app.import(&u, "places.gpx", GPX, "").await;
    let status = app.wait_final(&u, id).await;
    assert_eq!(status["state"], "complete", "{status:#}");
    assert_eq!(status["rows_imported"], 2);
    // GDAL's libraries (a hundred of them, 25 MB of resident memory) are the reader's alone.
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", server.process.pid())).unwrap();
    assert!(!maps.contains("libgdal"), "the server maps GDAL");
    assert!(maps.contains("libc.so"), "the maps were read");
}
