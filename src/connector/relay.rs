//! A private relay between the database driver and a source server. The driver (sqlx) resolves host names
//! itself and buffers whole protocol messages, two things a hostile source could exploit: a DNS answer that
//! changes between our address check and the driver's connection (DNS rebinding into the private network),
//! and a message or row declared gigabytes long. So the driver never opens a TCP connection: we connect to
//! the address the policy checked, and hand the driver a Unix socket in a private directory that forwards
//! to that connection. TLS still runs end to end between the driver and the server (the relay only moves
//! bytes), and since the driver connects "through a socket", the host name it is given is used only to
//! verify the server's certificate (`verify-full`), never to find the server.
//!
//! The relay also bounds what the driver can be made to buffer: the reader marks its progress after each
//! row it has fully taken ([`Progress::mark`]); if the server sends more than the cap past the last mark,
//! the relay cuts both sides and the read fails with a clear message instead of growing memory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener};

/// How the reader tells the relay it has consumed what came so far.
#[derive(Debug)]
pub struct Progress {
    forwarded: AtomicU64,
    marked: AtomicU64,
    cap: u64,
    exceeded: AtomicBool,
}

impl Progress {
    fn new(cap: u64) -> Progress {
        Progress { forwarded: AtomicU64::new(0), marked: AtomicU64::new(0), cap, exceeded: AtomicBool::new(false) }
    }

    /// Everything forwarded so far has been consumed (a whole row was read).
    pub fn mark(&self) {
        self.marked.store(self.forwarded.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Whether the relay cut the connection because the server sent too much without a mark.
    pub fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }

    pub fn cap(&self) -> u64 {
        self.cap
    }

    /// Counts `n` more bytes from the server; false once they go past the cap.
    fn forward(&self, n: usize) -> bool {
        let total = self.forwarded.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if total.saturating_sub(self.marked.load(Ordering::Relaxed)) > self.cap {
            self.exceeded.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }
}

/// A relay to one server connection. Dropping it stops the forwarding and removes its socket.
pub struct Relay {
    dir: tempfile::TempDir,
    socket: PathBuf,
    progress: Arc<Progress>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Connects to `address` (already checked against the address policy) within `timeout`, then listens on
    /// a Unix socket named `socket_name` in a private directory (mode 0700) for the driver's one connection.
    pub async fn connect(
        address: SocketAddr,
        timeout: Duration,
        socket_name: &str,
        cap: u64,
    ) -> std::io::Result<Relay> {
        let server = match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
            Ok(connected) => connected?,
            Err(_) => return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer")),
        };
        let _ = server.set_nodelay(true);
        let dir = tempfile::Builder::new().prefix("geoimport-relay-").tempdir()?;
        let socket = dir.path().join(socket_name);
        let listener = UnixListener::bind(&socket)?;
        let progress = Arc::new(Progress::new(cap));
        let task = tokio::spawn(forward(listener, server, progress.clone(), timeout));
        Ok(Relay { dir, socket, progress, task })
    }

    /// The directory holding the socket (what sqlx's PostgreSQL driver takes: it adds `.s.PGSQL.<port>`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The socket itself (what sqlx's MySQL driver takes).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn progress(&self) -> Arc<Progress> {
        self.progress.clone()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts the driver's connection (one only) and moves bytes both ways until either side closes, or the
/// server sends more than the cap past the reader's last mark.
async fn forward(listener: UnixListener, mut server: TcpStream, progress: Arc<Progress>, timeout: Duration) {
    let client = match tokio::time::timeout(timeout, listener.accept()).await {
        Ok(Ok((client, _))) => client,
        _ => return,
    };
    // Nobody else may connect through it.
    drop(listener);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.split();
    let upstream = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        let _ = server_write.shutdown().await;
    };
    let downstream = async {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if !progress.forward(n) || client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    // Either direction ending ends the connection: a cut downstream must not wait for the driver to hang up.
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, UnixStream};

    #[tokio::test]
    async fn bytes_cross_both_ways_to_the_checked_address() {
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = server.local_addr().unwrap();
        let relay = Relay::connect(address, Duration::from_secs(5), "s", 1 << 20).await.unwrap();
        let (mut upstream, _) = server.accept().await.unwrap();
        let mut client = UnixStream::connect(relay.socket()).await.unwrap();
        client.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        upstream.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        upstream.write_all(b"pong").await.unwrap();
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pong");
        // one driver connection only
        assert!(UnixStream::connect(relay.socket()).await.is_err());
    }

    #[tokio::test]
    async fn a_server_that_sends_past_the_cap_without_progress_is_cut() {
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = Relay::connect(server.local_addr().unwrap(), Duration::from_secs(5), "s", 1 << 20).await.unwrap();
        let (mut upstream, _) = server.accept().await.unwrap();
        let mut client = UnixStream::connect(relay.socket()).await.unwrap();
        let sender = tokio::spawn(async move {
            let chunk = vec![7u8; 10_000];
            for _ in 0..1000 {
                if upstream.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        });
        let mut received = Vec::new();
        let _ = client.read_to_end(&mut received).await;
        assert!(received.len() <= (1 << 20) + (64 << 10), "{} bytes came through", received.len());
        assert!(relay.progress().exceeded());
        sender.abort();
    }

    #[tokio::test]
    async fn marked_progress_lets_a_long_stream_through() {
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = Relay::connect(server.local_addr().unwrap(), Duration::from_secs(5), "s", 1 << 20).await.unwrap();
        let (mut upstream, _) = server.accept().await.unwrap();
        let mut client = UnixStream::connect(relay.socket()).await.unwrap();
        tokio::spawn(async move {
            let chunk = vec![7u8; 10_000];
            for _ in 0..500 {
                upstream.write_all(&chunk).await.unwrap();
            }
        });
        let progress = relay.progress();
        let mut buf = vec![0u8; 10_000];
        for _ in 0..500 {
            client.read_exact(&mut buf).await.unwrap();
            progress.mark();
        }
        assert!(!progress.exceeded());
    }
}
