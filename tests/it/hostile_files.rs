//! Files built to hurt the server: archive bombs hidden in metadata, lying zip directories, JSON elements too
//! big to hold, and imports cancelled while blocking work runs. Every limit crossed must end the import with a
//! clear failure that is not retried, and the server must stay within its memory budget and keep answering.
//!
//! The jobs run in a `geoimport serve` child process ([`ChildServer`]; the in-process API of [`TestApp`] only
//! queues them), so that the memory peak (VmHWM) and CPU time read from /proc are those of the server alone.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::attacks::*;
use crate::common::child_server::{ChildServer, ticks_per_second};
use crate::common::*;
use uuid::Uuid;

/// Bytes under `path` (0 once it is gone).
fn size_of_dir(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size_of_dir(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

/// The failure of an import, once it has ended: (state, error_code, what_about).
async fn outcome(app: &TestApp, user: &TestUser, id: Uuid, limit: Duration) -> (String, i64, String) {
    let status = wait_final_at(&app.client, &app.base, user, id, limit).await;
    (
        status["state"].as_str().unwrap_or_default().to_string(),
        status["error_code"].as_i64().unwrap_or_default(),
        status["get_error_text"]["what_about"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tar_whose_long_name_claims_four_gigabytes_fails_6666_without_reading_it() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;
    let server = ChildServer::with_workers(&app, &[]).await;
    let bomb = long_name_bomb();
    assert!(bomb.len() < 12 << 20, "the bomb is a small upload: {} bytes", bomb.len());
    let started = Instant::now();
    let id = app.import(&u, "names.tar.gz", bomb, "").await;
    let (state, code, detail) = outcome(&app, &u, id, Duration::from_secs(60)).await;
    assert_eq!((state.as_str(), code), ("failure", 6666), "{detail}");
    assert!(detail.contains("64 KiB"), "the message names the cap: {detail}");
    assert!(started.elapsed() < Duration::from_secs(10), "the 4 GiB name was read: {:?}", started.elapsed());
    let peak = server.peak_rss_mib();
    assert!(peak < 300, "the server peaked at {peak} MiB");
    assert_eq!(app.job_row(id).await.1, 1, "a limit crossed is not retried");
    assert!(server.live().await);
}

/// An entry of a hand-built zip, deflated once so that many entries can share its bytes.
#[derive(Clone)]
struct Deflated {
    stored: Vec<u8>,
    crc: u32,
    size: u32,
}

fn deflated(data: &[u8]) -> Deflated {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    let mut crc = flate2::Crc::new();
    crc.update(data);
    Deflated { stored: e.finish().unwrap(), crc: crc.sum(), size: data.len() as u32 }
}

/// A zip of `(name, entry, compressed size its directory declares)`.
fn zip_of_deflated(entries: &[(String, &Deflated, Option<u32>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut directory = Vec::new();
    for (name, e, claimed) in entries {
        let offset = out.len() as u32;
        let fields = |compressed: u32| {
            let mut h = Vec::new();
            h.extend(20u16.to_le_bytes()); // version needed
            h.extend(0u16.to_le_bytes()); // flags
            h.extend(8u16.to_le_bytes()); // deflate
            h.extend([0u8; 4]); // time, date
            h.extend(e.crc.to_le_bytes());
            h.extend(compressed.to_le_bytes());
            h.extend(e.size.to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend(0u16.to_le_bytes()); // extra field length
            h
        };
        out.extend(b"PK\x03\x04");
        out.extend(fields(e.stored.len() as u32));
        out.extend(name.as_bytes());
        out.extend(&e.stored);
        directory.extend(b"PK\x01\x02");
        directory.extend(20u16.to_le_bytes()); // made by
        directory.extend(fields(claimed.unwrap_or(e.stored.len() as u32)));
        directory.extend([0u8; 10]); // comment length, disk, attributes
        directory.extend(offset.to_le_bytes());
        directory.extend(name.as_bytes());
    }
    let (offset, size, count) = (out.len() as u32, directory.len() as u32, entries.len() as u16);
    out.extend(directory);
    out.extend(b"PK\x05\x06\0\0\0\0");
    out.extend(count.to_le_bytes());
    out.extend(count.to_le_bytes());
    out.extend(size.to_le_bytes());
    out.extend(offset.to_le_bytes());
    out.extend([0u8; 2]);
    out
}

/// Bytes that do not compress (xorshift).
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zip_whose_directory_lies_about_compressed_sizes_is_measured_by_what_is_read() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;
    let _server = ChildServer::with_workers(&app, &[]).await;
    // 64 MiB of a CSV-looking zero column deflate to about 64 KB. The directory claims they took the 3 MiB
    // of noise that follows too, which would put their ratio at 21, well under the limit of 200.
    let zeros = deflated(&vec![b'0'; 64 << 20]);
    let noisy = deflated(&noise(3 << 20));
    let claimed = (zeros.stored.len() + 30 + "noise.bin".len() + noisy.stored.len()) as u32;
    let zip = zip_of_deflated(&[("zeros.csv".into(), &zeros, Some(claimed)), ("noise.bin".into(), &noisy, None)]);
    let id = app.import(&u, "liar.zip", zip, "").await;
    let (state, code, detail) = outcome(&app, &u, id, Duration::from_secs(60)).await;
    assert_eq!((state.as_str(), code), ("failure", 6666), "{detail}");
    assert!(detail.contains("'zeros.csv' expands more than 200 times"), "{detail}");
    assert_eq!(app.job_row(id).await.1, 1, "a limit crossed is not retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zip_of_two_thousand_8_mib_entries_of_zeros_stops_early_with_6666() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;
    let server = ChildServer::with_workers(&app, &[]).await;
    // Each entry is exactly at the size below which no single file counts as a bomb; together they are
    // 16 GB from 16 MB (the review's finding #7 recipe).
    let zeros = deflated(&vec![0u8; 8 << 20]);
    let entries: Vec<(String, &Deflated, Option<u32>)> =
        (0..2000).map(|i| (format!("part_{i:04}.csv"), &zeros, None)).collect();
    let zip = zip_of_deflated(&entries);
    assert!(zip.len() < 20 << 20, "{} bytes", zip.len());
    let started = Instant::now();
    let id = app.import(&u, "zeros.zip", zip, "").await;
    let (state, code, detail) = outcome(&app, &u, id, Duration::from_secs(60)).await;
    assert_eq!((state.as_str(), code), ("failure", 6666), "{detail}");
    assert!(detail.contains("the archive expands more than 200 times"), "{detail}");
    assert!(started.elapsed() < Duration::from_secs(10), "stopped only after {:?}", started.elapsed());
    assert!(server.live().await);
}

/// A FeatureCollection of one feature whose line has `megabytes` MB of coordinates.
#[tokio::test(flavor = "multi_thread")]
async fn a_150_mb_json_of_one_element_fails_6666_once_and_the_server_stays_small() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;
    let server = ChildServer::with_workers(&app, &[]).await;
    let id = app.import(&u, "coast.geojson", geojson_of_one_huge_feature(150), "").await;
    let (state, code, detail) = outcome(&app, &u, id, Duration::from_secs(120)).await;
    assert_eq!((state.as_str(), code), ("failure", 6666), "{detail}");
    assert!(detail.contains("larger than 32 MiB"), "the message names the cap: {detail}");
    let peak = server.peak_rss_mib();
    assert!(peak < 300, "the server peaked at {peak} MiB");
    // Recorded once: no worker takes a failed job again (the server runs a later import instead), and the
    // server is still there.
    let later = app.import(&u, "later.csv", "a\n1\n", "").await;
    assert_eq!(outcome(&app, &u, later, Duration::from_secs(60)).await.0, "complete");
    let (state, attempts, owner) = app.job_row(id).await;
    assert_eq!((state.as_str(), attempts, owner), ("failure", 1, None));
    assert!(server.live().await);
    assert_eq!(app.tables_of("ana").await, ["later"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn four_imports_of_the_largest_records_at_once_stay_within_the_memory_budget() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;
    app.set_limit(&u, "max_concurrent_imports", 4).await;
    let server = ChildServer::with_workers(&app, &[("GEOIMPORT_WORKERS", "4")]).await;
    // Each just under the default record limit of 32 MiB, each in the shape that costs the most memory.
    let under = (32 << 20) - (1 << 20);
    let compact = |n: usize| vec!["[0,0]"; n].join(",");
    let files = [
        // a 31 MiB text field
        ("text.csv", padded_text("a,b\n1,", "xxxxxxxxxxxxxxxx", under, "\n")),
        // a 31 MiB WKT cell, more positions than a record's worth of memory: kept as text, not parsed
        ("wkt.csv", padded_text("id,wkt\n1,\"LINESTRING(", "0 0,", under, "0 0)\"\n")),
        // a 31 MiB string property
        (
            "string.geojson",
            padded_text(r#"{"type":"Feature","geometry":null,"properties":{"s":""#, "xxxxxxxx", under, r#""}}"#),
        ),
        // 20 MiB of string, and 1.9 million positions: a record's worth of geometry
        (
            "both.geojson",
            padded_text(
                r#"{"type":"Feature","properties":{"s":""#,
                "xxxxxxxx",
                20 << 20,
                &format!(r#""}},"geometry":{{"type":"LineString","coordinates":[{}]}}}}"#, compact(1_900_000)),
            ),
        ),
    ];
    let mut ids = Vec::new();
    for (name, bytes) in files {
        ids.push(app.import(&u, name, bytes, "").await);
    }
    for id in ids {
        let (state, code, detail) = outcome(&app, &u, id, Duration::from_secs(120)).await;
        assert_eq!(state, "complete", "{code}: {detail}");
    }
    let peak = server.peak_rss_mib();
    assert!(peak < 400, "the server peaked at {peak} MiB");
}

/// CSV-looking text that bzip2 packs about 140 times (a digit changed every 97 bytes): `streams` bzip2
/// streams of 1 MiB each, one after the other (as `bzip2 -c a b > c` makes), so that it takes a fraction
/// of a second to build and about a second per 30 MiB to unpack.
fn slow_bzip2(streams: usize) -> Vec<u8> {
    let line = b"2024-01-01,station,12.5,-3.25,ok\n";
    let mut block: Vec<u8> = line.iter().copied().cycle().take(1 << 20).collect();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for i in (0..block.len()).step_by(97) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        block[i] = b'0' + (x % 10) as u8;
    }
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
    e.write_all(&block).unwrap();
    e.finish().unwrap().repeat(streams)
}

/// After a cancel, the job's worker says it stopped within a second; from then on the server's CPU time
/// and the job's scratch space stop growing (measured over two seconds: work cut loose from the job, a
/// decompressor still running on a blocking thread, would show there).
async fn assert_work_stops(server: &ChildServer, scratch: &Path, id: Uuid) {
    assert_work_stops_saying(server, scratch, id, "no longer ours", Duration::from_secs(1)).await;
}

/// The same, once the worker has logged `said` for the job, which it must within `within`.
async fn assert_work_stops_saying(server: &ChildServer, scratch: &Path, id: Uuid, said: &str, within: Duration) {
    let cancelled = Instant::now();
    server.log.wait_for(&[&id.to_string(), said], Duration::from_secs(10)).await;
    assert!(cancelled.elapsed() < within, "the worker took {:?} to stop", cancelled.elapsed());
    let (cpu, size) = (server.cpu_ticks(), size_of_dir(scratch));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = (server.cpu_ticks() - cpu) as f64 / ticks_per_second() as f64;
    assert!(used < 0.3, "the server used {used:.2} s of CPU in the 2 s after the cancel had settled");
    let grown = size_of_dir(scratch).saturating_sub(size);
    assert_eq!(grown, 0, "the cancelled job's scratch space grew by {grown} bytes");
}

/// Queues 1.5 GB bzip2'd into 11 MB (within every limit, about 45 s of unpacking) and waits until it is being
/// unpacked; returns its id and its scratch folder.
async fn unpacking_slowly(app: &TestApp, user: &TestUser) -> (Uuid, PathBuf) {
    let id = app.import(user, "stations.csv.bz2", slow_bzip2(1500), "").await;
    wait_for_state(&app.pool, id, &["unpacking"], Duration::from_secs(30)).await;
    (id, app.data_dir.join("work").join(id.to_string()))
}

/// Waits until the unpacking has written 30 MB: well under way.
async fn well_under_way(scratch: &Path) {
    let start = Instant::now();
    while size_of_dir(scratch) < 30 << 20 {
        assert!(start.elapsed() < Duration::from_secs(30), "the unpacking never got going");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn cancel(app: &TestApp, user: &TestUser, id: Uuid) {
    let url = app.url(&format!("/api/v1/imports/{id}/cancel?api_key={}", user.key));
    let resp = app.client.post(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_past_its_time_limit_while_it_unpacks_stops_the_unpacking_within_a_second() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;
    let server = ChildServer::with_workers(&app, &[("GEOIMPORT_JOB_TIMEOUT_SECS", "4")]).await;
    let (id, scratch) = unpacking_slowly(&app, &u).await;
    // The time limit strikes in the middle of the unpacking (about 45 s of work).
    let status = wait_final_at(&app.client, &app.base, &u, id, Duration::from_secs(30)).await;
    assert_eq!(status["error_code"], 6667, "{status:#}");
    assert_work_stops_saying(&server, &scratch, id, "import failed", Duration::from_secs(1)).await;
    assert!(server.live().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_taken_over_while_it_unpacks_stops_the_unpacking_at_its_next_renewal() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;
    // Renewals every second.
    let server = ChildServer::with_workers(&app, &[("GEOIMPORT_LEASE_SECS", "3")]).await;
    let (id, scratch) = unpacking_slowly(&app, &u).await;
    well_under_way(&scratch).await;
    // Another worker took the job (its lease lapsed, say): this one must stop, not race it.
    sqlx::query("UPDATE geoimport.imports SET lease_owner = 'other-worker/claim', attempts = 2 WHERE id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_work_stops_saying(&server, &scratch, id, "no longer ours", Duration::from_secs(3)).await;
    assert!(server.live().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_an_import_while_it_unpacks_stops_the_unpacking_within_a_second() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;
    let server = ChildServer::with_workers(&app, &[]).await;
    let (id, scratch) = unpacking_slowly(&app, &u).await;
    well_under_way(&scratch).await;
    assert_eq!(app.job_row(id).await.0, "unpacking", "the unpacking is still under way when cancelled");
    cancel(&app, &u, id).await;
    assert_work_stops(&server, &scratch, id).await;
    assert!(!scratch.exists(), "the cancelled job's unpacked files are removed");
    assert_eq!(app.job_row(id).await.0, "failure");
    assert!(server.live().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_an_import_while_its_rows_are_scanned_stops_the_scan_within_a_second() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;
    let server = ChildServer::with_workers(&app, &[]).await;
    // 200 MB of rows: many seconds of scanning.
    let mut csv = String::with_capacity(210 << 20);
    csv.push_str("id,name,when,value,lat,lon\n");
    let mut i = 0u64;
    while csv.len() < 200 << 20 {
        csv.push_str(&format!(
            "{i},place number {i},2024-01-{:02},{}.{},40.{},-3.{}\n",
            i % 28 + 1,
            i % 977,
            i % 10,
            i % 9999,
            i % 7777
        ));
        i += 1;
    }
    let id = app.import(&u, "rows.csv", csv, "").await;
    wait_for_state(&app.pool, id, &["guessing"], Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.job_row(id).await.0, "guessing", "the scan is still under way when cancelled");
    cancel(&app, &u, id).await;
    assert_work_stops(&server, &app.data_dir.join("work").join(id.to_string()), id).await;
    assert!(server.live().await);
}
