//! What a run tells the reporter of its job: each state it enters, and when it needs them all written.

use tokio::sync::{mpsc, oneshot};

use crate::queue::ImportState;

pub enum Report {
    State(ImportState),
    /// Answered once every state sent before it is written.
    Written(oneshot::Sender<()>),
}

/// The run's end of the channel to its reporter.
#[derive(Clone)]
pub struct Progress(mpsc::UnboundedSender<Report>);

impl Progress {
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<Report>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self(tx), rx)
    }

    /// The reporter is gone only once the run is over: nothing to tell then.
    pub fn enter(&self, state: ImportState) {
        let _ = self.0.send(Report::State(state));
    }

    /// Waits until the states sent so far are in the job row. The completing transaction waits for them:
    /// a state written after it would be refused (the job is final), and lost from the row's history.
    pub async fn written(&self) {
        let (ack, done) = oneshot::channel();
        if self.0.send(Report::Written(ack)).is_ok() {
            let _ = done.await;
        }
    }
}
