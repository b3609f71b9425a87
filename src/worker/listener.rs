//! The notification connection: LISTEN on the queue's channel, so that idle workers wake as soon as a job
//! is queued or cancelled. It lives in a task of its own, so that the pool's loop (which selects on it
//! beside its timers, many times a second) never interrupts a reconnection half way. When the connection
//! fails it is made again, after a delay that doubles up to a minute; meanwhile the pool polls, so nothing
//! waits longer than a poll interval.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::queue;

const FIRST_RETRY: Duration = Duration::from_millis(500);
const LAST_RETRY: Duration = Duration::from_secs(60);

pub struct Notifications {
    payloads: mpsc::Receiver<String>,
    task: JoinHandle<()>,
}

impl Drop for Notifications {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Notifications {
    /// Starts listening (at once if the database answers, later otherwise).
    pub fn start(pool: &PgPool) -> Notifications {
        let (sender, payloads) = mpsc::channel(64);
        Notifications { payloads, task: tokio::spawn(listen(pool.clone(), sender)) }
    }

    /// The next notification's payload: empty for "a job is waiting", or a cancelled job's id. Cancel-safe.
    pub async fn next(&mut self) -> String {
        match self.payloads.recv().await {
            Some(payload) => payload,
            None => std::future::pending().await,
        }
    }
}

/// Listens, and listens again after every failure, until the receiver is gone.
async fn listen(pool: PgPool, payloads: mpsc::Sender<String>) {
    let mut delay = FIRST_RETRY;
    loop {
        match connect(&pool).await {
            Ok(mut listener) => {
                delay = FIRST_RETRY;
                loop {
                    match listener.recv().await {
                        Ok(n) => {
                            if payloads.send(n.payload().to_string()).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "notification connection failed; polling until it is back");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, retry_in = ?delay, "no notification connection; polling meanwhile"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(LAST_RETRY);
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(queue::NOTIFY_CHANNEL).await?;
    Ok(listener)
}
