//! The notification connection: LISTEN on the queue's channel, so that idle workers wake as soon as a job
//! is queued or cancelled. When the connection fails it is made again, after a delay that doubles up to a
//! minute; meanwhile the pool polls, so nothing waits longer than a poll interval.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::time::Instant;

use crate::queue;

const FIRST_RETRY: Duration = Duration::from_millis(500);
const LAST_RETRY: Duration = Duration::from_secs(60);

pub struct Notifications {
    pool: PgPool,
    listener: Option<PgListener>,
    retry_at: Instant,
    delay: Duration,
}

impl Notifications {
    /// Listens at once if it can; otherwise the first [`next`](Notifications::next) tries again.
    pub async fn connect(pool: &PgPool) -> Notifications {
        let mut n = Notifications { pool: pool.clone(), listener: None, retry_at: Instant::now(), delay: FIRST_RETRY };
        n.reconnect().await;
        n
    }

    /// The next notification's payload: empty for "a job is waiting", or a cancelled job's id. Cancel-safe:
    /// the pool selects on it beside its timers.
    pub async fn next(&mut self) -> String {
        loop {
            match &mut self.listener {
                Some(l) => match l.recv().await {
                    Ok(n) => return n.payload().to_string(),
                    Err(e) => {
                        tracing::warn!(error = %e, "notification connection failed; polling until it is back");
                        self.listener = None;
                        self.retry_at = Instant::now() + self.delay;
                    }
                },
                None => {
                    tokio::time::sleep_until(self.retry_at).await;
                    self.reconnect().await;
                }
            }
        }
    }

    async fn reconnect(&mut self) {
        let listening = async {
            let mut l = PgListener::connect_with(&self.pool).await?;
            l.listen(queue::NOTIFY_CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        match listening.await {
            Ok(l) => {
                self.listener = Some(l);
                self.delay = FIRST_RETRY;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?self.delay, "no notification connection; polling meanwhile");
                self.retry_at = Instant::now() + self.delay;
                self.delay = (self.delay * 2).min(LAST_RETRY);
            }
        }
    }
}
