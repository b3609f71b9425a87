//! Serving connections: the accept loop, the cap on open connections, and the timeouts each connection
//! lives under (review #6). `axum::serve` sets no timer, so hyper's header timeout never fired and a
//! client could hold a connection (and a file descriptor) for ever by sending half a request or nothing.
//!
//! - At most `max_connections` are open at once. When all are taken the loop stops accepting until one
//!   ends, so the rest wait in the kernel's listen queue instead of costing descriptors and memory.
//! - A client has `header_timeout` to send its first bytes and then, on HTTP/1, its headers. hyper starts
//!   that timer again whenever a kept-alive connection waits for its next request, so the same setting is
//!   the idle timeout of HTTP/1 connections.
//! - HTTP/2 connections (prior knowledge; there is no TLS here) ping the client to find dead peers, take at
//!   most [`H2_MAX_STREAMS`] requests at once, and are told to go away (GOAWAY) when no request has been
//!   in flight for `header_timeout`, and dropped if they have not gone a second later: hyper has no idle
//!   timeout of its own for them.
//! - Shutting down stops the loop accepting, asks every connection to finish what it is doing and close,
//!   and waits for them all.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// How often an HTTP/2 connection pings its client, and how long it waits for the answer.
const H2_PING_EVERY: Duration = Duration::from_secs(20);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// Requests one HTTP/2 connection may have in flight (hyper's default is 200). Each is a handler that may
/// stage an upload; the connection cap times this bounds the server's work.
pub const H2_MAX_STREAMS: u32 = 32;
/// hyper's read buffer per HTTP/1 connection, which bounds a request's headers (431 beyond). hyper's
/// default is about 400 KiB: times a thousand connections that sit in the header timeout, 400 MB.
const H1_MAX_BUF: usize = 64 << 10;
/// How long an idle HTTP/2 connection told to go away may take to close before it is dropped.
const H2_IDLE_GRACE: Duration = Duration::from_secs(1);
/// What an HTTP/2 client sends first (RFC 9113, 3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The limits connections are served under.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub max_connections: usize,
}

/// Accepts connections on `listener` and serves `app` on each until `stop` completes; then stops
/// accepting, lets every connection finish its requests, and returns once all are closed.
pub async fn serve(listener: TcpListener, app: Router, limits: ConnectionLimits, stop: impl Future<Output = ()>) {
    let builder = Arc::new(builder(limits.header_timeout));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let connections = TaskTracker::new();
    let closing = CancellationToken::new();
    tokio::pin!(stop);
    loop {
        // A slot first: while every slot is taken nothing is accepted.
        let slot = tokio::select! {
            biased;
            _ = &mut stop => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            biased;
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        let connection = Connection {
            app: app.clone(),
            builder: builder.clone(),
            header_timeout: limits.header_timeout,
            closing: closing.clone(),
            _slot: slot,
        };
        connections.spawn(connection.run(stream));
    }
    drop(listener);
    closing.cancel();
    connections.close();
    connections.wait().await;
}

fn builder(header_timeout: Duration) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout).max_buf_size(H1_MAX_BUF);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_PING_EVERY)
        .keep_alive_timeout(H2_PING_TIMEOUT)
        .max_concurrent_streams(H2_MAX_STREAMS);
    builder
}

/// An error of `accept`: one connection's (it went away before we took it) is skipped; running out of
/// descriptors or memory waits a little, so that the loop does not spin while nothing can be accepted.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::warn!(error = %e, "cannot accept a connection; trying again shortly");
    tokio::time::sleep(Duration::from_millis(250)).await;
}

/// One accepted connection and what it needs; it holds its slot until it ends.
struct Connection {
    app: Router,
    builder: Arc<Builder<TokioExecutor>>,
    header_timeout: Duration,
    closing: CancellationToken,
    _slot: OwnedSemaphorePermit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
}

impl Connection {
    async fn run(self, stream: TcpStream) {
        // hyper-util's own protocol detection waits for bytes with no timeout, so the first bytes are read
        // here, under the header timeout, and handed back to hyper in front of the stream.
        let sniffed = tokio::select! {
            sniffed = tokio::time::timeout(self.header_timeout, sniff(stream)) => sniffed,
            _ = self.closing.cancelled() => return,
        };
        let Ok(Ok((protocol, io))) = sniffed else { return };
        let activity = Arc::new(Activity::new());
        let service = TrackedService { app: self.app.clone(), activity: activity.clone() };
        let connection = self.builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        let mut shutting_down = false;
        // When an idle HTTP/2 connection was told to go away, and by when it must have gone.
        let mut idle_deadline: Option<tokio::time::Instant> = None;
        loop {
            let idle = async {
                match idle_deadline {
                    None if protocol == Protocol::Http2 && !shutting_down => {
                        activity.idle_for(self.header_timeout).await
                    }
                    // hyper's graceful shutdown of HTTP/2 waits for the client to answer a ping, which a
                    // client that answers nothing never does: an idle connection that stays is dropped.
                    Some(deadline) => {
                        tokio::time::sleep_until(deadline).await;
                        activity.idle_for(Duration::ZERO).await
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(e) = served {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    break;
                }
                _ = self.closing.cancelled(), if !shutting_down => {
                    connection.as_mut().graceful_shutdown();
                    shutting_down = true;
                }
                _ = idle => {
                    if idle_deadline.is_some() {
                        break;
                    }
                    connection.as_mut().graceful_shutdown();
                    shutting_down = true;
                    idle_deadline = Some(tokio::time::Instant::now() + H2_IDLE_GRACE);
                }
            }
        }
    }
}

/// Reads until the first bytes tell HTTP/2's preface from anything else; returns the protocol and the
/// stream with those bytes put back in front.
async fn sniff(mut stream: TcpStream) -> io::Result<(Protocol, Prefixed)> {
    let mut buf = [0u8; H2_PREFACE.len()];
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        filled += n;
        let protocol = if buf[..filled] != H2_PREFACE[..filled] {
            Protocol::Http1
        } else if filled == H2_PREFACE.len() {
            Protocol::Http2
        } else {
            continue;
        };
        return Ok((protocol, Prefixed { prefix: buf, start: 0, end: filled, stream }));
    }
}

/// A stream whose first bytes were already read: they are read again from here first.
struct Prefixed {
    prefix: [u8; H2_PREFACE.len()],
    start: usize,
    end: usize,
    stream: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.start < self.end {
            let n = buf.remaining().min(self.end - self.start);
            let start = self.start;
            buf.put_slice(&self.prefix[start..start + n]);
            self.start += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Whether a connection has requests in flight, and since when it has had none.
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `opened` when the last request ended.
    quiet_since_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity { opened: Instant::now(), in_flight: AtomicUsize::new(0), quiet_since_ms: AtomicU64::new(0) }
    }

    fn now_ms(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    /// Completes once no request has been in flight for `limit`.
    async fn idle_for(&self, limit: Duration) {
        let limit_ms = limit.as_millis() as u64;
        loop {
            let quiet_for = self.now_ms().saturating_sub(self.quiet_since_ms.load(Ordering::Acquire));
            let busy = self.in_flight.load(Ordering::Acquire) > 0;
            if !busy && quiet_for >= limit_ms {
                return;
            }
            let wait = if busy { limit_ms } else { limit_ms - quiet_for };
            tokio::time::sleep(Duration::from_millis(wait.max(1))).await;
        }
    }
}

/// Counts a request in flight for as long as it lives.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: &Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.quiet_since_ms.store(self.0.now_ms(), Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The router, as hyper calls it, counting each request in the connection's [`Activity`].
#[derive(Clone)]
struct TrackedService {
    app: Router,
    activity: Arc<Activity>,
}

impl hyper::service::Service<Request<Incoming>> for TrackedService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let in_flight = InFlight::begin(&self.activity);
        let response = self.app.clone().oneshot(request);
        Box::pin(async move {
            let response = response.await;
            drop(in_flight);
            response
        })
    }
}
