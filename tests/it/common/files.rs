//! What a data directory holds, for checks that nothing was left behind. A directory that is not there
//! fails the check instead of passing it: after a change of layout, "nothing in X" must not mean "looked
//! at nothing".

use std::path::{Path, PathBuf};

/// Every file under `dir`, recursively; `dir` must exist.
pub fn paths_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for e in entries_of(dir) {
        if e.is_dir() {
            files.extend(paths_under(&e));
        } else {
            files.push(e);
        }
    }
    files
}

/// The entries of `dir` (files and directories); `dir` must exist.
pub fn entries_of(dir: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{} cannot be read ({e}): the check would look at nothing", dir.display()));
    entries.map(|e| e.unwrap().path()).collect()
}
