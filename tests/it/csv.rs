//! CSV files as people really send them: other delimiters and encodings, quotes, line breaks, codes that
//! look like numbers, bad values, geometry columns; and the files we must refuse, each with its code.

use crate::common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn semicolon_tab_and_pipe_files_are_split_right() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    app.import_ok(&u, "semi.csv", "name;lat;lon\nA;40,5;x\nB;41.1;-3.5\n", "").await;
    assert_eq!(app.columns("ana", "semi").await.len(), 3 + 3);
    app.import_ok(&u, "tabs.tsv", "name\tnote\tn\nA\tx, y, z\t1\nB\tw\t2\n", "").await;
    assert_eq!(app.column_type("ana", "tabs", "n").await, "integer");
    assert_eq!(
        app.texts("SELECT note FROM ana.tabs ORDER BY cartodb_id").await,
        [Some("x, y, z".into()), Some("w".into())]
    );
    app.import_ok(&u, "tabs_in_txt.txt", "a\tb\n1\t2\n", "").await;
    assert_eq!(app.columns("ana", "tabs_in_txt").await.len(), 5);
    app.import_ok(&u, "pipes.csv", "a|b|c\n1|2|3\n", "").await;
    assert_eq!(app.count("SELECT c FROM ana.pipes").await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn windows_1252_and_utf16_files_keep_their_accents() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let latin: &[u8] = b"nombre;ciudad\nJos\xe9;M\xe1laga\nFran\xe7ois;Besan\xe7on\n\xd1u\xf1oa;C\xe1diz\n";
    app.import_ok(&u, "acentos.csv", latin, "").await;
    assert_eq!(
        app.texts("SELECT nombre || '/' || ciudad FROM ana.acentos ORDER BY cartodb_id").await,
        [Some("José/Málaga".into()), Some("François/Besançon".into()), Some("Ñuñoa/Cádiz".into())]
    );
    let mut utf16 = vec![0xff, 0xfe];
    utf16.extend("ciudad,n\nZürich,1\n東京,2\n".encode_utf16().flat_map(u16::to_le_bytes));
    app.import_ok(&u, "utf16.csv", utf16, "").await;
    assert_eq!(
        app.texts("SELECT ciudad FROM ana.utf16 ORDER BY n").await,
        [Some("Zürich".into()), Some("東京".into())]
    );
    // UTF-8 with a BOM: the BOM is not part of the first column's name
    app.import_ok(&u, "bom.csv", "\u{feff}id,v\n1,a\n", "").await;
    assert_eq!(app.columns("ana", "bom").await[3].0, "id");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_turns_out_not_to_be_utf8_after_the_first_megabyte_is_reread() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let mut data = b"id,word\n".to_vec();
    for i in 0..60_000 {
        data.extend_from_slice(format!("{i},plain ascii text\n").as_bytes());
    }
    data.extend_from_slice(b"60000,caf\xe9\n");
    assert!(data.len() > 1 << 20);
    app.import_ok(&u, "late_latin1.csv", data, "").await;
    assert_eq!(app.texts("SELECT word FROM ana.late_latin1 WHERE id = 60000").await, [Some("café".into())]);
    assert_eq!(app.count("SELECT count(*) FROM ana.late_latin1").await, 60_001);
}

#[tokio::test(flavor = "multi_thread")]
async fn quoted_cells_with_line_breaks_quotes_and_delimiters_stay_whole() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let csv = "id,comment,n\r\n1,\"first line\r\nsecond line\",10\r\n2,\"she said \"\"hi\"\", then left\",20\r\n3,plain,30\r\n";
    let status = app.import_ok(&u, "quotes.csv", csv, "").await;
    assert_eq!(status["rows_imported"], 3);
    assert_eq!(
        app.texts("SELECT comment FROM ana.quotes ORDER BY id").await,
        [Some("first line\r\nsecond line".into()), Some("she said \"hi\", then left".into()), Some("plain".into())]
    );
    // old Mac line endings (CR only)
    app.import_ok(&u, "mac.csv", "a,b\r1,2\r3,4\r", "").await;
    assert_eq!(app.count("SELECT sum(b)::bigint FROM ana.mac").await, 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn codes_with_leading_zeros_phone_numbers_and_ids_stay_text() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let csv = "zip,phone,code,big\n02134,+34 600 123 456,E000123,12345678901234567890\n10001,+1 555 0100,E000124,1\n";
    app.import_ok(&u, "codes.csv", csv, "").await;
    for col in ["zip", "phone", "code", "big"] {
        assert_eq!(app.column_type("ana", "codes", col).await, "text", "{col}");
    }
    assert_eq!(
        app.texts("SELECT zip FROM ana.codes ORDER BY cartodb_id").await,
        [Some("02134".into()), Some("10001".into())]
    );
    assert_eq!(
        app.texts("SELECT big FROM ana.codes WHERE code = 'E000123'").await,
        [Some("12345678901234567890".into())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn types_are_guessed_from_every_row_and_bad_values_are_kept_aside() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let mut csv = String::from("id,born,seen,seen_utc,amount,flag,big\n");
    for i in 1..=20 {
        csv.push_str(&format!("{i},1990-01-{i:02},2024-03-01 10:{i:02}:00,2024-03-01T10:00:00+02:00,{i}.5,true,{i}\n"));
    }
    // a bad date, far below the first rows; and an id needing 64 bits
    csv.push_str("21,1990-02-30,2024-03-01 11:00:00,2024-03-01T10:00:00Z,7,false,9000000000\n");
    let status = app.import_ok(&u, "typed.csv", csv, "").await;
    let types: Vec<(String, String)> = app.columns("ana", "typed").await.into_iter().skip(3).collect();
    let want = [
        ("id", "integer"),
        ("born", "date"),
        ("born_invalid", "text"),
        ("seen", "timestamp without time zone"),
        ("seen_utc", "timestamp with time zone"),
        ("amount", "double precision"),
        ("flag", "boolean"),
        ("big", "bigint"),
    ];
    assert_eq!(types, want.map(|(a, b)| (a.to_string(), b.to_string())));
    assert_eq!(status["warnings"]["invalid_values"], json!({"born": 1}));
    assert_eq!(
        app.texts("SELECT coalesce(born::text, 'NULL') || ' ' || born_invalid FROM ana.typed WHERE id = 21").await,
        [Some("NULL 1990-02-30".into())]
    );
    assert_eq!(app.count("SELECT count(*) FROM ana.typed WHERE born_invalid IS NULL").await, 20);
    let utc = app.texts("SELECT to_char(seen_utc AT TIME ZONE 'UTC', 'HH24:MI') FROM ana.typed WHERE id = 1").await;
    assert_eq!(utc, [Some("08:00".into())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn quoted_fields_and_type_guessing_switches() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let csv = "a,b,lat,lon\n\"1\",2,40,-3\n\"3\",4,41,-4\n";
    app.import_ok(&u, "quoted_on.csv", csv, "").await;
    assert_eq!(app.column_type("ana", "quoted_on", "a").await, "integer");
    app.import_ok(&u, "quoted_off.csv", csv, "quoted_fields_guessing=false").await;
    assert_eq!(app.column_type("ana", "quoted_off", "a").await, "text");
    assert_eq!(app.column_type("ana", "quoted_off", "b").await, "integer");
    app.import_ok(&u, "no_guess.csv", csv, "type_guessing=false").await;
    assert_eq!(app.column_type("ana", "no_guess", "b").await, "text");
    assert_eq!(app.count("SELECT count(the_geom) FROM ana.no_guess").await, 0, "no lat/lon points without guessing");
    assert_eq!(app.count("SELECT count(the_geom) FROM ana.quoted_off").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn geometry_columns_in_wkt_geojson_hex_wkb_and_kml() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let csv = "name,the_geom,lat,lon\n\
        poly,\"POLYGON((0 0,1 0,1 1,0 0))\",50,50\n\
        json,\"{\"\"type\"\":\"\"LineString\"\",\"\"coordinates\"\":[[0,0],[1,1]]}\",50,50\n\
        hex,0101000020E6100000000000000000F03F0000000000000040,50,50\n\
        kml,\"<Point><coordinates>3,4</coordinates></Point>\",50,50\n\
        none,,50,50\n\
        measured,POINT ZM (5 6 7 8),50,50\n";
    let status = app.import_ok(&u, "shapes.csv", csv, "").await;
    assert!(status["warnings"].is_null(), "{status}");
    let kinds = app.texts("SELECT coalesce(GeometryType(the_geom), 'NULL') FROM ana.shapes ORDER BY cartodb_id").await;
    assert_eq!(kinds, ["POLYGON", "LINESTRING", "POINT", "POINT", "NULL", "POINT"].map(|s| Some(s.to_string())));
    // Z and M are dropped.
    assert_eq!(
        app.texts("SELECT ST_AsText(the_geom) || ' ' || ST_NDims(the_geom) FROM ana.shapes WHERE name = 'measured'")
            .await,
        [Some("POINT(5 6) 2".into())]
    );
    assert_eq!(
        app.texts("SELECT ST_AsText(the_geom) FROM ana.shapes WHERE name = 'hex'").await,
        [Some("POINT(1 2)".into())]
    );
    // the geometry column beat the lat/lon columns, which stay as data
    assert_eq!(app.column_type("ana", "shapes", "lat").await, "integer");

    let csv = "id,wkt\n1,POINT(1 1)\n2,POINT(2 2)\n3,POINT(3 3)\n4,POINT(4 4)\n5,not a shape\n";
    let status = app.import_ok(&u, "wkt_col.csv", csv, "").await;
    assert_eq!(status["warnings"]["invalid_values"], json!({"wkt": 1}));
    assert_eq!(
        app.texts("SELECT wkt_invalid FROM ana.wkt_col WHERE the_geom IS NULL").await,
        [Some("not a shape".into())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_wkb_count_is_a_bad_value_not_a_crash() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let csv = "id,the_geom\n1,0106000000FFFFFFFF\n2,0102000000FFFFFFFF0000\n";
    let status = app.import_ok(&u, "forged.csv", csv, "").await;
    assert_eq!(status["rows_imported"], 2);
    assert_eq!(app.count("SELECT count(*) FROM ana.forged WHERE the_geom IS NULL").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn ragged_rows_are_padded_and_extra_fields_kept() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let status = app.import_ok(&u, "ragged.csv", "a,b,c\n1,2\n4,5,6,7\n8,9,10,\n", "").await;
    assert_eq!(status["rows_imported"], 3);
    assert_eq!(status["warnings"]["short_rows"], 1);
    let names: Vec<String> = app.columns("ana", "ragged").await.into_iter().map(|c| c.0).skip(3).collect();
    assert_eq!(names, ["a", "b", "c", "field_4"]);
    assert_eq!(app.count("SELECT count(*) FROM ana.ragged WHERE c IS NULL").await, 1);
    assert_eq!(app.count("SELECT field_4 FROM ana.ragged WHERE a = 4").await, 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exported_table_keeps_its_cartodb_ids() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    app.import_ok(&u, "export.csv", "cartodb_id,name\n10,a\n20,b\n30,c\n", "").await;
    assert_eq!(
        app.texts("SELECT string_agg(cartodb_id || name, ',' ORDER BY cartodb_id) FROM ana.export").await,
        [Some("10a,20b,30c".into())]
    );
    let next: i64 = sqlx::query_scalar("INSERT INTO ana.export (name) VALUES ('d') RETURNING cartodb_id")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(next, 31);
    // repeated ids cannot be a key: they are kept in another column and rows are numbered afresh
    let status = app.import_ok(&u, "dups.csv", "cartodb_id,name\n1,a\n1,b\n", "").await;
    assert_eq!(status["warnings"]["cartodb_id_renumbered"], "cartodb_id_original");
    assert_eq!(app.count("SELECT count(DISTINCT cartodb_id) FROM ana.dups").await, 2);
    assert_eq!(app.count("SELECT sum(cartodb_id_original) FROM ana.dups").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn column_names_are_sanitized_and_made_unique() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    app.import_ok(&u, "names.csv", "Name,name,select,2abc,Teléfono,the_geom_webmercator,\n1,2,3,4,5,6,7\n", "").await;
    let names: Vec<String> = app.columns("ana", "names").await.into_iter().map(|c| c.0).skip(3).collect();
    assert_eq!(names, ["name", "name_1", "_select", "_2abc", "telefono", "the_geom_webmercator_1", "field_7"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn files_we_cannot_import_fail_with_the_right_code_and_leave_nothing() {
    let app = TestApp::start().await;
    let u = app.create_user("ana").await;
    let cases: Vec<(&str, Vec<u8>, i64)> = vec![
        ("empty.csv", vec![], 1005),
        ("blank.csv", b"\n\n  \n".to_vec(), 1005),
        ("no_header.csv", b",,,\n1,2,3,4\n".to_vec(), 1005),
        ("image.csv", (0u8..=255).cycle().take(4096).collect(), 2002),
        ("map.shp", b"not really a shapefile".to_vec(), 1006),
        // A PNG is a raster now; this one is cut short in its header: damaged, 2001.
        (
            "photo.png",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00".to_vec(),
            2001,
        ),
        ("notes.docx", b"PK\x05\x06".iter().copied().chain([0u8; 18]).collect(), 1002),
        ("unterminated.csv", [b"a,b\n1,\"".as_slice(), &vec![b'x'; 70 << 20]].concat(), 2003),
    ];
    let mut wide = (0..1700).map(|i| format!("c{i}")).collect::<Vec<_>>().join(",").into_bytes();
    wide.push(b'\n');
    let mut all = cases;
    all.push(("wide.csv", wide, 2004));
    for (name, bytes, code) in all {
        let status = app.import_and_wait(&u, name, bytes, "").await;
        assert_eq!(status["state"], "failure", "{name}: {status}");
        assert_eq!(status["error_code"], code, "{name}: {status}");
        assert!(status["get_error_text"]["what_about"].as_str().unwrap().len() > 20);
    }
    assert!(app.tables_of("ana").await.is_empty());
    assert!(app.staging_tables().await.is_empty());
    // a header and no rows has nothing to import, as the reference says (1005)
    let status = app.import_and_wait(&u, "header_only.csv", "a,b\n", "").await;
    assert_eq!((status["state"].as_str(), status["error_code"].as_i64()), (Some("failure"), Some(1005)), "{status:#}");
    assert!(app.tables_of("ana").await.is_empty());
}
