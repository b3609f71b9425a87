//! README's promises and the tests that prove them: docs/PROMISES.md has a section for every section of
//! README.md, and in it a row for each promise with the tests that prove it. This test keeps the two in
//! step: a README section without its entry, a promise without a test (`MISSING`), or a test named there
//! that does not exist fails it. A promise no test can check says why (`not a test: ...`).

use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The `##` and `###` headings of a markdown text, outside code blocks.
fn headings(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && (line.starts_with("## ") || line.starts_with("### ")) {
            found.push(line.trim_start_matches('#').trim().to_string());
        }
    }
    found
}

/// The cells of the Test column of PROMISES.md: (section, promise, tests).
fn rows(promises: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut found = Vec::new();
    for line in promises.lines() {
        if line.starts_with("## ") || line.starts_with("### ") {
            section = line.trim_start_matches('#').trim().to_string();
        } else if line.starts_with('|') && !line.starts_with("|---") && !line.starts_with("| Promise") {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            if cells.len() >= 2 {
                found.push((section.clone(), cells[0].to_string(), cells[cells.len() - 1].to_string()));
            }
        }
    }
    found
}

/// Whether `reference` (`tests/it/x.rs::name` or `src/y.rs::name`) names a function that exists.
fn exists(reference: &str) -> bool {
    let Some((file, name)) = reference.split_once("::") else { return false };
    let Ok(text) = std::fs::read_to_string(Path::new(ROOT).join(file)) else { return false };
    text.contains(&format!("fn {name}("))
}

#[test]
fn every_readme_section_has_its_promises_and_every_promise_its_test() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let promises = std::fs::read_to_string(Path::new(ROOT).join("docs/PROMISES.md")).unwrap();
    let listed = headings(&promises);
    let mut problems = Vec::new();
    for heading in headings(&readme) {
        if !listed.contains(&heading) {
            problems.push(format!("README section '{heading}' has no section in docs/PROMISES.md"));
        }
    }
    let rows = rows(&promises);
    assert!(rows.len() > 50, "docs/PROMISES.md has too few rows to be read right: {}", rows.len());
    for (section, promise, tests) in rows {
        if tests == "—" || tests.starts_with("not a test:") {
            continue;
        }
        if tests.contains("MISSING") {
            problems.push(format!("{section}: '{promise}' has no test"));
            continue;
        }
        for reference in tests.split([',', ';']).map(|t| t.trim().trim_matches('`')).filter(|t| !t.is_empty()) {
            if !exists(reference) {
                problems.push(format!("{section}: '{promise}' names {reference}, which does not exist"));
            }
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}
