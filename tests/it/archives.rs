//! Archives: every kind, nested, with clutter skipped, partial failures reported, limits enforced, and
//! nothing ever written outside the work area.

use std::io::Write;

use crate::common::*;
use serde_json::json;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, bytes) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *bytes).unwrap();
    }
    b.into_inner().unwrap()
}

const CSV_A: &[u8] = b"name,lat,lon\nA,1,2\nB,3,4\n";
const CSV_B: &[u8] = b"code,value\nx,1\ny,2\nz,3\n";

#[tokio::test(flavor = "multi_thread")]
async fn every_archive_kind_unpacks_to_its_tables() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let zip = zip_of(&[("alpha.csv", CSV_A.to_vec()), ("data/beta.csv", CSV_B.to_vec())]);
    let status = app.import_ok(&u, "both.zip", zip, "").await;
    assert_eq!(status["table_names"], json!(["alpha", "beta"]));
    assert_eq!(status["tables_created_count"], 2);
    assert_eq!(status["rows_imported"], 5);

    assert_eq!(app.import_ok(&u, "gamma.csv.gz", gzip(CSV_B), "").await["table_name"], "gamma");
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    bz.write_all(CSV_B).unwrap();
    assert_eq!(app.import_ok(&u, "delta.csv.bz2", bz.finish().unwrap(), "").await["table_name"], "delta");
    let tar = tar_of(&[("epsilon.csv", CSV_A), ("zeta.csv", CSV_B)]);
    assert_eq!(app.import_ok(&u, "two.tar", tar.clone(), "").await["table_names"], json!(["epsilon", "zeta"]));
    assert_eq!(app.import_ok(&u, "two.tgz", gzip(&tar), "").await["table_names"], json!(["epsilon_1", "zeta_1"]));
    assert_eq!(app.import_ok(&u, "two.tar.gz", gzip(&tar), "").await["tables_created_count"], 2);
    // a zip inside a zip, and a .carto (a zip by another name)
    let inner = zip_of(&[("eta.csv", CSV_A.to_vec())]);
    let outer = zip_of(&[("inner.zip", inner), ("theta.csv", CSV_B.to_vec())]);
    assert_eq!(app.import_ok(&u, "nested.zip", outer, "").await["table_names"], json!(["eta", "theta"]));
    let carto = zip_of(&[("iota.csv", CSV_B.to_vec())]);
    assert_eq!(app.import_ok(&u, "map.carto", carto, "").await["table_name"], "iota");
    // Every table holds its file's rows, whatever packed it.
    for table in ["beta", "gamma", "delta", "zeta", "zeta_1", "theta", "iota"] {
        let rows =
            app.texts(&format!("SELECT string_agg(code || '=' || value, ' ' ORDER BY code) FROM ana.{table}")).await;
        assert_eq!(rows, [Some("x=1 y=2 z=3".to_string())], "{table}");
    }
    for table in ["alpha", "epsilon", "epsilon_1", "eta"] {
        let rows = app
            .texts(&format!(
                "SELECT string_agg(name || ' ' || ST_AsText(the_geom), ', ' ORDER BY name) FROM ana.{table}"
            ))
            .await;
        assert_eq!(rows, [Some("A POINT(2 1), B POINT(4 3)".to_string())], "{table}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tar_with_names_longer_than_its_header_holds_imports_them() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    // Past 100 bytes a name goes in a GNU long-name entry before its file.
    let long = format!("{}/stations_of_the_long_folder.csv", "exported_by_a_tool_that_likes_long_names/".repeat(4));
    let tar = tar_of(&[(long.as_str(), CSV_A), ("short.csv", CSV_B)]);
    let status = app.import_ok(&u, "long.tar.gz", gzip(&tar), "").await;
    assert_eq!(status["table_names"], json!(["stations_of_the_long_folder", "short"]));
    assert_eq!(status["rows_imported"], 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn clutter_is_skipped_and_a_bad_file_does_not_sink_the_good_one() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let zip = zip_of(&[
        ("__MACOSX/._good.csv", b"\x00\x05\x16\x07junk".to_vec()),
        (".hidden.csv", CSV_A.to_vec()),
        ("README.txt", b"read me first".to_vec()),
        ("VERSION.txt", b"1.0".to_vec()),
        ("notes.pdf", b"%PDF-1.4".to_vec()),
        ("good.csv", CSV_A.to_vec()),
        ("broken.shp", b"no dbf, no shx".to_vec()),
    ]);
    let status = app.import_ok(&u, "mixed.zip", zip, "").await;
    assert_eq!(status["table_names"], json!(["good"]));
    let failed = &status["warnings"]["failed_files"];
    assert_eq!(failed.as_array().unwrap().len(), 1, "{status}");
    assert_eq!(failed[0]["file"], "broken.shp");
    assert_eq!(failed[0]["error_code"], 1006);
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_table_limit_files_are_skipped_and_named() {
    let app = TestApp::start_with(|s| s.runtime.max_tables_per_import = 2).await;
    let u = app.create_user("ana").await;
    let zip = zip_of(&[("a.csv", CSV_B.to_vec()), ("b.csv", CSV_B.to_vec()), ("c.csv", CSV_B.to_vec())]);
    let status = app.import_ok(&u, "three.zip", zip, "").await;
    assert_eq!(status["table_names"], json!(["a", "b"]));
    assert_eq!(status["warnings"]["max_tables_per_import"], 2);
    assert_eq!(status["warnings"]["skipped_files"], json!(["c.csv"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn unsafe_bombed_locked_corrupt_and_empty_archives_are_refused() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let outside = app.data_dir.join("work").join("escaped.csv");

    // an entry that climbs out of the work area
    let traversal = zip_of(&[("ok.csv", CSV_A.to_vec()), ("../../escaped.csv", CSV_B.to_vec())]);
    let status = app.import_and_wait(&u, "evil.zip", traversal, "").await;
    assert_eq!(status["error_code"], 1003, "{status}");
    assert!(status["get_error_text"]["what_about"].as_str().unwrap().contains("outside"));
    let tar = tar_of(&[("ok.csv", CSV_A)]);
    let mut evil_tar = tar.clone();
    // Rewrite the entry name in the raw header (the tar crate refuses to write `..`). Unpacked in
    // work/<job>/unpacked/, it would land in the data directory itself, which outlives the job.
    evil_tar[..14].copy_from_slice(b"../../../x.csv");
    let mut h = tar::Header::from_byte_slice(&evil_tar[..512]).clone();
    h.set_cksum();
    evil_tar[..512].copy_from_slice(h.as_bytes());
    assert_eq!(app.import_and_wait(&u, "evil.tar", evil_tar, "").await["error_code"], 1003);
    assert!(!outside.exists() && !app.data_dir.join("x.csv").exists(), "an entry was written outside the work area");

    // 20 MB of zeros squeezed into a few kilobytes
    let bomb = zip_of(&[("zeros.csv", vec![b'0'; 20 << 20])]);
    assert!(bomb.len() < 100_000);
    assert_eq!(app.import_and_wait(&u, "bomb.zip", bomb, "").await["error_code"], 6666);
    assert_eq!(app.import_and_wait(&u, "bomb.csv.gz", gzip(&vec![b'0'; 20 << 20]), "").await["error_code"], 6666);

    // a password-protected entry (the encryption flag set in both headers)
    let mut locked = zip_of(&[("secret.csv", CSV_A.to_vec())]);
    locked[6] |= 1;
    let central = locked.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    locked[central + 8] |= 1;
    assert_eq!(app.import_and_wait(&u, "locked.zip", locked, "").await["error_code"], 1018);

    let mut truncated = zip_of(&[("a.csv", CSV_A.to_vec()), ("b.csv", CSV_B.to_vec())]);
    truncated.truncate(truncated.len() / 2);
    assert_eq!(app.import_and_wait(&u, "cut.zip", truncated, "").await["error_code"], 1003);

    // a directory too big to read: refused from its declared entry count
    let names: Vec<String> = (0..10_001).map(|i| format!("f{i}.csv")).collect();
    let many: Vec<(&str, Vec<u8>)> = names.iter().map(|n| (n.as_str(), b"a".to_vec())).collect();
    assert_eq!(app.import_and_wait(&u, "many.zip", zip_of(&many), "").await["error_code"], 6666);

    let nothing = zip_of(&[("notes.pdf", b"%PDF-1.4".to_vec()), ("readme.txt", b"hello".to_vec())]);
    assert_eq!(app.import_and_wait(&u, "nothing.zip", nothing, "").await["error_code"], 1002);

    assert!(app.tables_of("ana").await.is_empty());
    assert!(app.staging_tables().await.is_empty());
}
