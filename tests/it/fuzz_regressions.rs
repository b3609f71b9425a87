//! Replays, through the fuzz targets' own entry points (src/fuzzing.rs), every seed the fuzzers start from
//! and every input that once crashed one of them (fuzz/regressions/<target>/, named after what it found).
//! A regression here fails as the fuzzer failed: with a panic, or by allocating past what the parser may.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs = 0;
    for kind in ["seeds", "regressions"] {
        let Ok(dir) = std::fs::read_dir(root.join(kind).join(target)) else { continue };
        for entry in dir {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{} fails the {target} target again", path.display());
            inputs += 1;
        }
    }
    assert!(inputs > 0, "no inputs for {target}");
}

#[test]
fn csv_inputs_found_by_fuzzing() {
    replay("csv", geoimport::fuzzing::csv);
}

#[test]
fn json_inputs_found_by_fuzzing() {
    replay("json", geoimport::fuzzing::json);
}

#[test]
fn archives_found_by_fuzzing() {
    replay("unpack", geoimport::fuzzing::unpack);
}

#[test]
fn names_found_by_fuzzing() {
    replay("names", geoimport::fuzzing::names);
}

#[test]
fn wkb_found_by_fuzzing() {
    replay("wkb", geoimport::fuzzing::wkb);
}

#[test]
fn copy_streams_found_by_fuzzing() {
    replay("copy", geoimport::fuzzing::copy);
}
