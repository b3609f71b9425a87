//! Captures every log line of the test process (geoimport's and sqlx's), so tests can check what the
//! server logs, e.g. that a password never appears.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing (once per test binary), at debug level for geoimport and sqlx.
pub fn capture() {
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        // A subscriber installed before this one would receive every line, and checks that a line is
        // absent would pass without looking at anything.
        tracing_subscriber::fmt()
            .with_env_filter("info,geoimport=debug,sqlx=debug")
            .with_writer(move || Shared(writer.clone()))
            .with_ansi(false)
            .try_init()
            .expect("the log capture is the test process's only subscriber");
        buf
    });
}

/// Everything logged so far.
pub fn text() -> String {
    LOGS.get().map(|b| String::from_utf8_lossy(&b.lock().unwrap()).into_owned()).unwrap_or_default()
}
