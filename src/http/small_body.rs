//! Bodies read whole: the JSON or form parameters of `POST /api/v1/imports` and of the synchronization
//! routes. Such a body may carry the API key, so it is read before anyone is authenticated; what it costs
//! is bounded for the whole process, not per request: at most [`MAX_BYTES`] each, at most [`AT_ONCE`] held
//! at a time, each read within [`DEADLINE`] (so that slow senders cannot keep the places).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures_util::Stream;
use http_body_util::BodyExt;
use tokio::sync::Semaphore;

use super::body_error::body_error;
use super::error::ApiError;

/// Largest body read whole.
pub const MAX_BYTES: usize = 1 << 20;
/// Bodies read at once by the whole process: with [`MAX_BYTES`] each, 64 MiB at most.
pub const AT_ONCE: usize = 64;
/// Longest a body may take to arrive, waiting for a place included.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The places for bodies being read, shared by every request.
#[derive(Clone)]
pub struct SmallBodies(Arc<Semaphore>);

impl Default for SmallBodies {
    fn default() -> Self {
        SmallBodies(Arc::new(Semaphore::new(AT_ONCE)))
    }
}

impl SmallBodies {
    /// Reads `body` whole: 413 past [`MAX_BYTES`], 408 past [`DEADLINE`].
    pub async fn read<S, E>(&self, body: S) -> Result<Bytes, ApiError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        let reading = async {
            let _place = self.0.acquire().await.map_err(|_| ApiError::Internal("the body gate closed".into()))?;
            let limited = http_body_util::Limited::new(Body::from_stream(body), MAX_BYTES);
            match limited.collect().await {
                Ok(collected) => Ok(collected.to_bytes()),
                Err(e) => Err(body_error(e.as_ref())),
            }
        };
        tokio::time::timeout(DEADLINE, reading).await.unwrap_or(Err(ApiError::RequestTimeout))
    }

    /// Places free now (for tests of the bound).
    pub fn available(&self) -> usize {
        self.0.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    /// A body that sends its first bytes and then nothing more.
    fn stalled() -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        futures_util::stream::once(async { Ok(Bytes::from_static(b"{\"url\":")) })
            .chain(futures_util::stream::pending())
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_arriving_is_408_at_the_deadline_and_gives_its_place_back() {
        let gate = SmallBodies::default();
        let started = tokio::time::Instant::now();
        let answer = gate.read(stalled()).await;
        assert!(matches!(answer, Err(ApiError::RequestTimeout)), "{answer:?}");
        assert_eq!(started.elapsed(), DEADLINE);
        assert_eq!(gate.available(), AT_ONCE);
    }
}
