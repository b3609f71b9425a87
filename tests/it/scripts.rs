//! What the scripts of the quick start decide, run with bash as a user runs them.

use std::os::unix::fs::PermissionsExt;

/// `default_data_dir` of scripts/lib/prereqs.sh, run in `dir`.
fn default_data_dir_in(dir: &std::path::Path) -> String {
    let lib = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lib/prereqs.sh");
    let out = std::process::Command::new("bash")
        .args(["-c", &format!("source {lib} && default_data_dir")])
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("GEOIMPORT_DATA_DIR")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn as_root_a_checkout_postgres_cannot_enter_gets_var_lib_geoimport() {
    let closed = tempfile::tempdir().unwrap();
    std::fs::set_permissions(closed.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let open = tempfile::tempdir().unwrap();
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    if nix::unistd::geteuid().is_root() {
        assert_eq!(default_data_dir_in(closed.path()), "/var/lib/geoimport");
    } else {
        // Not root: the embedded PostgreSQL runs as this user, who can reach any checkout it runs from.
        assert_eq!(default_data_dir_in(closed.path()), "");
    }
    assert_eq!(default_data_dir_in(open.path()), "");
}
