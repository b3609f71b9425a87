//! The Python clients the tests drive (CARTO's SDK, tuspy, pyftpdlib, spreadsheet writers), each in a venv
//! that scripts/test makes under target/.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

/// The Python of venv `target/<venv>` (or the one `variable` names) that can import `modules`; `install`
/// says what scripts/test installs there, for the failure's message.
pub fn venv_python(variable: &str, venv: &str, modules: &str, install: &str) -> PathBuf {
    let python = std::env::var_os(variable)
        .map(Into::into)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/{venv}/bin/python")));
    let ok = std::process::Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{modules} is not installed at {}: run scripts/test (it makes the venv: python3 -m venv target/{venv} && \
         target/{venv}/bin/pip install {install}; Debian package python3-venv)",
        python.display()
    );
    python
}

/// Runs `script` (a path under the crate) with `python`, `args` as JSON on its stdin, within `limit`; the JSON
/// it printed.
pub async fn run_json_script(python: &std::path::Path, script: &str, args: &Value, limit: Duration) -> Value {
    let mut child = tokio::process::Command::new(python)
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(script))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(args.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(limit, child.wait_with_output()).await.unwrap().unwrap();
    assert!(out.status.success(), "{script} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}
