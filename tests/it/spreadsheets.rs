//! Spreadsheets (XLS, XLSX, XLSB, ODS) are read with calamine in the confined reader: the first sheet with data
//! becomes a table, typed and georeferenced like a CSV, dates stay dates, and a sheet too big for the
//! reader's memory fails its own import. The workbooks are made with real writers: openpyxl and odfpy
//! (tests/it/sheets/write_book.py, in the venv scripts/test makes) and Perl's Spreadsheet::WriteExcel; the
//! XLSB, which no common library writes, by write_book.py itself, record by record.

use std::path::{Path, PathBuf};

use crate::common::*;
use crate::formats::{app_and_user, write};
use serde_json::json;

/// The venv's Python with openpyxl and odfpy (GEOIMPORT_TEST_SHEETS_PYTHON, or the one scripts/test makes).
fn writers_python() -> PathBuf {
    crate::common::python::venv_python(
        "GEOIMPORT_TEST_SHEETS_PYTHON",
        "sheet-writers-venv",
        "openpyxl, odf",
        "openpyxl==3.1.5 odfpy==1.4.1",
    )
}

fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/sheets").join(name).display().to_string()
}

/// The bytes of the workbook `what` as `ext`, written by openpyxl or odfpy (xlsx, ods), write_book.py itself
/// (xlsb) or Perl (xls).
fn workbook(what: &str, ext: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(format!("book.{ext}")).display().to_string();
    let run = match ext {
        "xls" => std::process::Command::new("perl").args([&script("write_book.pl"), what, &out]).output(),
        _ => std::process::Command::new(writers_python()).args([&script("write_book.py"), what, ext, &out]).output(),
    };
    let run = run.expect("the workbook writer runs");
    assert!(
        run.status.success(),
        "writing {what}.{ext} (xls needs the package libspreadsheet-writeexcel-perl): {}",
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::read(out).unwrap()
}

/// The columns of `ana.<table>` with their types, and its rows as text, for comparing imports.
async fn table_of(app: &TestApp, table: &str) -> (Vec<(String, String)>, Vec<Option<String>>) {
    let columns = app.columns("ana", table).await;
    let rows = app
        .texts(&format!(
            "SELECT concat_ws(' | ', name, visits, score, day, seen, ratio, ST_AsText(the_geom)) FROM ana.{table} \
             ORDER BY visits"
        ))
        .await;
    (columns, rows)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_sheet_with_data_is_typed_with_its_dates_and_points() {
    let (app, u) = app_and_user().await;
    // An empty "Cover" sheet, then the data, its header at B3.
    let status = app.import_ok(&u, "places.xlsx", workbook("places", "xlsx"), "").await;
    assert_eq!(status["table_name"], "places");
    assert_eq!(status["rows_imported"], 3, "{status:#}");
    for (column, expected) in [
        ("name", "text"),
        ("visits", "integer"),
        ("score", "double precision"),
        ("day", "date"),
        ("seen", "timestamp without time zone"),
        ("ratio", "double precision"),
    ] {
        assert_eq!(app.column_type("ana", "places", column).await, expected, "{column}");
    }
    assert_eq!(
        table_of(&app, "places").await.1,
        [
            Some("Sol | 10 | 1.5 | 2024-05-17 | 2024-05-17 13:45:30 | 0.5 | POINT(-3.7 40.41)".into()),
            Some("Opera | 20 | 2.25 | 2024-06-01 | 2024-06-01 08:00:00 | POINT(-3.71 40.42)".into()),
            Some("Retiro | 30 | 3 | 2023-12-31 | 2023-12-31 23:59:59 | 2 | POINT(-3.684 40.415)".into()),
        ]
    );
    // The #DIV/0! cell is no value, and the import says how many there were, and which.
    assert_eq!(status["warnings"]["error_cells"], 1, "{status:#}");
    assert_eq!(status["rejections"], 1, "{status:#}");
    let id = status["id"].as_str().unwrap();
    let report = app.get_json(&u, &format!("/api/v1/imports/{id}/rejections")).await;
    let r = &report["rejections"][0];
    assert_eq!((&r["row"], &r["column"], &r["value"]), (&json!(2), &json!("ratio"), &json!("#DIV/0!")), "{report:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_workbook_as_ods_xlsb_and_legacy_xls_makes_the_same_table() {
    let (app, u) = app_and_user().await;
    app.import_ok(&u, "places.xlsx", workbook("places", "xlsx"), "").await;
    let expected = table_of(&app, "places").await;
    // The XLSB is written record by record by write_book.py: no common library writes one.
    for ext in ["ods", "xlsb", "xls"] {
        let status = app.import_ok(&u, &format!("places_{ext}.{ext}"), workbook("places", ext), "").await;
        let table = status["table_name"].as_str().unwrap().to_string();
        assert_eq!(table_of(&app, &table).await, expected, "{ext}");
        // The XLSB's #DIV/0! is an error cell too (an ODS keeps a formula's error as its formula only, and
        // the Perl writer of the XLS keeps none).
        let error_cells = if ext == "xlsb" { 1 } else { 0 };
        assert_eq!(status["warnings"]["error_cells"].as_u64().unwrap_or(0), error_cells, "{ext}: {status:#}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_legacy_xls_that_gdal_could_not_open_imports() {
    // A 20,000-character text spans the CONTINUE records of the shared strings: GDAL's XLS driver
    // (FreeXL) refused to open such a workbook.
    let (app, u) = app_and_user().await;
    let status = app.import_ok(&u, "notes.xls", workbook("long-text", "xls"), "").await;
    assert_eq!(status["rows_imported"], 1);
    assert_eq!(
        app.texts("SELECT name || ' ' || length(note) || ' ' || left(note, 3) FROM ana.notes").await,
        [Some("Sol 20000 yyy".into())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_workbook_fails_2008_and_one_without_data_1005() {
    let (app, u) = app_and_user().await;
    let mut damaged = workbook("places", "xlsx");
    damaged.truncate(damaged.len() / 2);
    for (name, bytes) in
        [("damaged.xlsx", damaged), ("damaged.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1broken".to_vec())]
    {
        let status = app.import_and_wait(&u, name, bytes, "").await;
        assert_eq!(status["error_code"], 2008, "{name}: {status:#}");
        let about = status["get_error_text"]["what_about"].as_str().unwrap();
        assert!(about.contains("the spreadsheet could not be read: "), "{name}: {about}");
    }
    let status = app.import_and_wait(&u, "blank.xlsx", workbook("empty", "xlsx"), "").await;
    assert_eq!(status["error_code"], 1005, "{status:#}");
    let about = status["get_error_text"]["what_about"].as_str().unwrap();
    assert!(about.contains("the spreadsheet has no sheet with data"), "{about}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sheet_too_big_for_the_readers_memory_fails_6666_and_the_next_imports() {
    // Two cells, at A1 and at the last cell of a sheet: calamine would hold 16,384 x 1,048,576 cells.
    let app = TestApp::start_with(|s| s.runtime.gdal_memory_mb = 512).await;
    let u = app.create_user("ana").await;
    let status = app.import_and_wait(&u, "far.xlsx", workbook("sparse", "xlsx"), "").await;
    assert_eq!(status["error_code"], 6666, "{status:#}");
    let about = status["get_error_text"]["what_about"].as_str().unwrap();
    assert!(about.contains("calamine needed more than the 512 MB"), "{about}");
    assert_eq!(app.staging_tables().await, Vec::<String>::new());
    // The worker goes on with the next import.
    assert_eq!(app.import_ok(&u, "places.xlsx", workbook("places", "xlsx"), "").await["rows_imported"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn spreadsheets_are_typed_and_georeferenced_like_csv() {
    let (app, u) = app_and_user().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = write(
        dir.path(),
        "sheet.csv",
        "name,lat,lon,zip,visits\nSol,40.41,-3.70,02134,10\nOpera,40.42,-3.71,28013,20\n",
    );
    let second_sheet = write(dir.path(), "extra_sheet.csv", "other,more\nnot,imported\n");
    for (driver, ext) in [("XLSX", "xlsx"), ("ODS", "ods")] {
        let out = dir.path().join(format!("book.{ext}")).display().to_string();
        ogr2ogr(&["-f", driver, &out, &csv, "-oo", "AUTODETECT_TYPE=NO"]);
        // A second sheet: only a workbook's first sheet is imported.
        ogr2ogr(&["-f", driver, "-update", &out, &second_sheet, "-nln", "extra"]);
        let status = app.import_ok(&u, &format!("book_{ext}.{ext}"), std::fs::read(&out).unwrap(), "").await;
        let table = status["table_name"].as_str().unwrap().to_string();
        assert_eq!(
            app.count(&format!("SELECT count(*) FROM ana.{table} WHERE GeometryType(the_geom) = 'POINT'")).await,
            2,
            "{ext}"
        );
        assert_eq!(app.column_type("ana", &table, "zip").await, "text", "{ext}");
        assert_eq!(app.column_type("ana", &table, "visits").await, "integer", "{ext}");
        assert_eq!(status["tables_created_count"], 1, "{ext}: {status:#}");
    }
    // a legacy Excel workbook, written with Perl's Spreadsheet::WriteExcel
    let xls = dir.path().join("legacy.xls");
    let script = "use Spreadsheet::WriteExcel; my $b = Spreadsheet::WriteExcel->new($ARGV[0]); my $s = $b->add_worksheet(); \
        my @rows = (['name','lat','lon','zip','visits'], ['Sol','40.41','-3.70','02134',10], ['Opera','40.42','-3.71','28013',20]); \
        for my $r (0..$#rows) { for my $c (0..4) { $s->write_string($r, $c, $rows[$r][$c]) if $c < 4 || $r == 0; $s->write_number($r, $c, $rows[$r][$c]) if $c == 4 && $r > 0 } } $b->close();";
    let out = std::process::Command::new("perl").args(["-e", script, &xls.display().to_string()]).output().unwrap();
    assert!(
        out.status.success(),
        "perl with Spreadsheet::WriteExcel (package libspreadsheet-writeexcel-perl): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = app.import_ok(&u, "legacy.xls", std::fs::read(&xls).unwrap(), "").await;
    assert_eq!(status["table_name"], "legacy");
    assert_eq!(app.count("SELECT count(*) FROM ana.legacy WHERE GeometryType(the_geom) = 'POINT'").await, 2);
    assert_eq!(app.column_type("ana", "legacy", "zip").await, "text");
    assert_eq!(app.count("SELECT sum(visits) FROM ana.legacy").await, 30);

    // a CSV saved with an .xls name imports as the CSV it is
    let status = app.import_ok(&u, "fake.xls", "a,b\n1,2\n", "").await;
    assert_eq!(status["table_name"], "fake");
    // a file that is no spreadsheet at all
    let status =
        app.import_and_wait(&u, "broken.xlsx", vec![0u8, 159, 146, 150, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "").await;
    assert_eq!(status["error_code"], 2008, "{status}");
}
