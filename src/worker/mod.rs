//! The worker pool: claims jobs (woken by NOTIFY, or by polling when notifications are lost), runs each in
//! its own task under a lease it keeps renewing, and records how each ended. A panic or error in one job
//! fails that job and nothing else.
//!
//! Shutdown: once `shutdown` fires the pool claims nothing more, lets running jobs finish for the grace
//! period, then stops the rest and hands them back to the queue for another worker.

mod listener;
mod progress;
pub mod runner;
mod watch;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::Settings;
use crate::errors::{ImportError, codes};
use crate::load::table;
use crate::queue::{self, ImportJob, ImportState};
use crate::services::Services;
use crate::source::staging::StagingArea;
use listener::Notifications;
use progress::{Progress, Report};
use runner::{JobContext, RunOutcome};

/// How often finished jobs' leftovers (staged files, staging tables) are looked for.
const JANITOR_EVERY: Duration = Duration::from_secs(60);

/// How old a staged object without a live job must be before the janitor removes it: an upload whose
/// row is being committed right now has one for a moment.
const ORPHAN_GRACE: Duration = Duration::from_secs(3600);

/// Runs `settings.runtime.workers` concurrent jobs until `shutdown` fires.
pub async fn run_pool(pool: PgPool, settings: Arc<Settings>, services: Arc<Services>, shutdown: CancellationToken) {
    let slots = settings.runtime.workers;
    if slots == 0 {
        return;
    }
    let owner = format!(
        "{}:{}:{}",
        nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "host".into()),
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut notifications = Notifications::start(&pool);
    tracing::info!(worker = %owner, slots, "workers started");
    let mut jobs = Running::default();
    let mut chores = Chores::new(&settings);
    while !shutdown.is_cancelled() {
        chores.run_due(&pool, &settings, &services).await;
        while jobs.tasks.len() < slots {
            match queue::claim_next(&pool, &owner, settings.runtime.lease(), &crowding(&jobs.owners, slots)).await {
                Ok(Some(job)) => jobs.start(job, &pool, &settings, &services),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming a job failed");
                    break;
                }
            }
        }
        let poll = tokio::time::sleep(settings.runtime.poll_interval().min(chores.reap_every));
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = poll => {}
            Some(ended) = jobs.tasks.join_next(), if !jobs.tasks.is_empty() => {
                if let Ok(id) = ended {
                    jobs.ended(id);
                }
            }
            payload = notifications.next() => {
                let cancelled = payload.strip_prefix(queue::CANCEL_PREFIX).and_then(|id| uuid::Uuid::try_parse(id).ok());
                if let Some(token) = cancelled.and_then(|id| jobs.stoppers.get(&id)) {
                    token.cancel();
                }
            }
        }
    }
    jobs.drain(settings.runtime.shutdown_grace()).await;
    tracing::info!(worker = %owner, "workers stopped");
}

/// The jobs this process runs.
#[derive(Default)]
struct Running {
    /// Each running job's task answers with its id when it ends.
    tasks: JoinSet<uuid::Uuid>,
    /// The `lost` token of each running job: a cancel notification stops the job at once.
    stoppers: HashMap<uuid::Uuid, CancellationToken>,
    /// Whose job each slot runs: one user never takes every slot of a process (see `crowding`).
    owners: HashMap<uuid::Uuid, uuid::Uuid>,
    /// Cancelled when the grace period after a shutdown is over: the jobs still running are handed back.
    hard_stop: CancellationToken,
}

impl Running {
    fn start(&mut self, job: ImportJob, pool: &PgPool, settings: &Arc<Settings>, services: &Arc<Services>) {
        self.owners.insert(job.id, job.user_id);
        // The claim wrote the first state; the run sends the others.
        let (states, reported) = Progress::channel();
        let ctx = JobContext {
            pool: pool.clone(),
            settings: settings.clone(),
            services: services.clone(),
            owner: job.lease_owner.clone().unwrap_or_default(),
            state: states,
            meter: Default::default(),
        };
        let (id, lost) = (job.id, CancellationToken::new());
        self.stoppers.insert(id, lost.clone());
        self.tasks.spawn(run_job(ctx, reported, job, self.hard_stop.clone(), lost).map(move |()| id));
    }

    fn ended(&mut self, id: uuid::Uuid) {
        self.stoppers.remove(&id);
        self.owners.remove(&id);
    }

    /// Waits for the running jobs, at most `grace`; then hands those still running back to the queue.
    async fn drain(mut self, grace: Duration) {
        if self.tasks.is_empty() {
            return;
        }
        tracing::info!(jobs = self.tasks.len(), "shutting down: waiting for running jobs");
        let grace = tokio::time::sleep(grace);
        tokio::pin!(grace);
        loop {
            tokio::select! {
                next = self.tasks.join_next() => if next.is_none() { break },
                _ = &mut grace => {
                    tracing::warn!(jobs = self.tasks.len(), "grace period over: handing jobs back");
                    self.hard_stop.cancel();
                    while self.tasks.join_next().await.is_some() {}
                    break;
                }
            }
        }
    }
}

/// What every worker process does besides running jobs, each on its own timer: reclaiming jobs whose
/// worker vanished, queueing due synchronizations, and cleaning what finished jobs left.
struct Chores {
    reap_every: Duration,
    last_reap: Instant,
    last_schedule: Instant,
    last_janitor: Instant,
}

impl Chores {
    fn new(settings: &Settings) -> Chores {
        let reap_every = (settings.runtime.lease() / 2).clamp(Duration::from_millis(500), Duration::from_secs(10));
        let now = Instant::now();
        Chores {
            reap_every,
            last_reap: now - reap_every,
            last_schedule: now - settings.runtime.poll_interval(),
            last_janitor: now - JANITOR_EVERY,
        }
    }

    async fn run_due(&mut self, pool: &PgPool, settings: &Settings, services: &Services) {
        if self.last_reap.elapsed() >= self.reap_every {
            self.last_reap = Instant::now();
            match queue::reclaim_expired(pool, settings.runtime.max_attempts).await {
                Ok((0, 0)) => {}
                Ok((requeued, failed)) => {
                    tracing::warn!(requeued, failed, "reclaimed jobs whose worker vanished")
                }
                Err(e) => tracing::warn!(error = %e, "reclaiming expired jobs failed"),
            }
        }
        if self.last_schedule.elapsed() >= settings.runtime.poll_interval() {
            self.last_schedule = Instant::now();
            match crate::sync::queue_due(pool, 20).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(runs = n, "queued due synchronizations"),
                Err(e) => tracing::warn!(error = %e, "scheduling synchronizations failed"),
            }
        }
        if self.last_janitor.elapsed() >= JANITOR_EVERY {
            self.last_janitor = Instant::now();
            let grace = settings.runtime.hooks.orphan_grace_secs.map_or(ORPHAN_GRACE, Duration::from_secs);
            janitor(pool, &services.staging, grace).await;
        }
    }
}

/// Users who may not take another of this process's `slots`: those already holding all but one of them.
/// The slot left over is kept for everyone else, so that one user's long backlog never makes another
/// user's import wait for a whole import to end.
fn crowding(owners: &HashMap<uuid::Uuid, uuid::Uuid>, slots: usize) -> Vec<uuid::Uuid> {
    if slots < 2 {
        return Vec::new();
    }
    let mut held: HashMap<uuid::Uuid, usize> = HashMap::new();
    for user in owners.values() {
        *held.entry(*user).or_default() += 1;
    }
    held.into_iter().filter(|(_, n)| *n >= slots - 1).map(|(user, _)| user).collect()
}

/// Runs one job in a task of its own (so a panic is caught as a JoinError), with a reporter that renews the
/// lease and writes state changes, a time limit, and the shutdown signal. `lost` is cancelled when the job
/// stops being ours: the reporter finds the lease gone, or a cancel notification names it.
async fn run_job(
    ctx: JobContext,
    states: mpsc::UnboundedReceiver<Report>,
    job: ImportJob,
    hard_stop: CancellationToken,
    lost: CancellationToken,
) {
    let span = tracing::info_span!("import", id = %job.id, attempt = job.attempts);
    async move {
        tracing::info!(file = job.display_name.as_deref().unwrap_or(""), "job started");
        let started = Instant::now();
        let (pool, staging, owner) = (ctx.pool.clone(), ctx.services.staging.clone(), ctx.owner.clone());
        let data_dir = ctx.settings.data_dir.clone();
        let (lease, timeout) = (ctx.settings.runtime.lease(), ctx.settings.runtime.job_timeout());
        let slow_writes = Duration::from_millis(ctx.settings.runtime.hooks.slow_state_writes_ms);
        let meter = ctx.meter.clone();
        let reporter = tokio::spawn(report(pool.clone(), job.id, owner.clone(), lease, states, lost.clone(), slow_writes));
        let watcher = tokio::spawn(watch::watch(pool.clone(), job.id, owner.clone(), ctx.meter.clone()));
        let job_for_run = job.clone();
        let mut work = tokio::spawn(async move { runner::run(&ctx, &job_for_run).await }.in_current_span());
        enum End {
            Finished(Result<Result<RunOutcome, ImportError>, tokio::task::JoinError>),
            TimedOut,
            LeaseLost,
            Stopped,
        }
        let end = tokio::select! {
            r = &mut work => End::Finished(r),
            _ = tokio::time::sleep(timeout) => End::TimedOut,
            _ = lost.cancelled() => End::LeaseLost,
            _ = hard_stop.cancelled() => End::Stopped,
        };
        if !matches!(end, End::Finished(_)) {
            work.abort();
            let _ = (&mut work).await;
            // The aborted task's statements would otherwise run on in the database.
            if let Ok(n @ 1..) = table::cancel_job_statements(&pool, job.id).await {
                tracing::info!(statements = n, "cancelled the stopped job's statements in the database");
            }
        }
        reporter.abort();
        watcher.abort();
        let failure = match end {
            End::Finished(Ok(Ok(RunOutcome::Published(p)))) => {
                tracing::info!(tables = ?p.table_names, skipped = ?p.skipped, secs = started.elapsed().as_secs_f64(), "import complete");
                staging.remove_job(job.id).await;
                let _ = queue::clear_staged_path(&pool, job.id).await;
                return;
            }
            End::Finished(Ok(Ok(RunOutcome::Unchanged))) => {
                tracing::info!("source unchanged; nothing imported");
                staging.remove_job(job.id).await;
                return;
            }
            End::Finished(Ok(Ok(RunOutcome::LeaseLost))) | End::LeaseLost => {
                tracing::warn!("the job is no longer ours (cancelled, or taken by another worker); stopped");
                let _ = table::drop_attempt_tables(&pool, job.id, job.attempts).await;
                // Cancelled: its files are nobody's now. Taken over: they are the other worker's.
                if queue::find_state(&pool, job.id).await.ok().flatten().is_some_and(ImportState::is_final) {
                    staging.remove_job(job.id).await;
                }
                return;
            }
            End::Stopped => {
                let _ = table::drop_attempt_tables(&pool, job.id, job.attempts).await;
                match queue::hand_back(&pool, job.id, &owner).await {
                    Ok(_) => tracing::info!("handed back to the queue"),
                    Err(e) => tracing::warn!(error = %e, "could not hand the job back; its lease will lapse"),
                }
                return;
            }
            End::Finished(Ok(Err(e))) => e,
            End::Finished(Err(join)) => ImportError::unknown(format!("the import crashed: {}", panic_message(join))),
            End::TimedOut => ImportError::new(
                codes::TIMED_OUT,
                format!("the import ran for more than {} seconds and was stopped", timeout.as_secs()),
            ),
        };
        let failure = failure.without_paths(&data_dir);
        tracing::warn!(code = failure.code, detail = %failure.detail, "import failed");
        // Only this attempt's tables: if the job was taken over, the new attempt's are not ours to drop.
        let _ = table::drop_attempt_tables(&pool, job.id, job.attempts).await;
        // The run may have stopped before its own mark was written: the failure's status must still say it.
        if meter.raster()
            && let Err(e) = queue::mark_raster(&pool, job.id).await
        {
            tracing::warn!(error = %e, "could not record that the import holds a raster");
        }
        match queue::fail(&pool, job.id, &owner, &failure, None).await {
            Ok(true) => {
                staging.remove_job(job.id).await;
                let _ = queue::clear_staged_path(&pool, job.id).await;
            }
            Ok(false) => tracing::warn!("the job was no longer ours when recording its failure"),
            Err(e) => tracing::error!(error = %e, "could not record the failure; the lease will lapse and retry"),
        }
    }
    .instrument(span)
    .await
}

fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into()),
        Err(e) => e.to_string(),
    }
}

/// Renews the lease a few times per lease period and writes each state change; cancels `lost` when the
/// job turns out to be someone else's.
async fn report(
    pool: PgPool,
    id: uuid::Uuid,
    owner: String,
    lease: Duration,
    mut states: mpsc::UnboundedReceiver<Report>,
    lost: CancellationToken,
    slow_writes: Duration,
) {
    let mut tick = tokio::time::interval(lease / 3);
    tick.tick().await;
    let mut last_renewed = std::time::Instant::now();
    loop {
        let still_ours = tokio::select! {
            _ = tick.tick() => queue::renew_lease(&pool, id, &owner, lease).await,
            next = states.recv() => match next {
                None => return,
                Some(Report::Written(ack)) => {
                    let _ = ack.send(());
                    continue;
                }
                Some(Report::State(s)) => {
                    tokio::time::sleep(slow_writes).await;
                    queue::set_state(&pool, id, &owner, s).await
                }
            },
        };
        match still_ours {
            Ok(true) => last_renewed = std::time::Instant::now(),
            Ok(false) => {
                lost.cancel();
                return;
            }
            // A database hiccup: try again at the next tick; the lease has slack for a few misses. Once a
            // whole lease has passed without renewal, another worker may have the job: stop.
            Err(e) => {
                tracing::warn!(error = %e, "lease renewal failed");
                if last_renewed.elapsed() >= lease {
                    lost.cancel();
                    return;
                }
            }
        }
    }
}

/// Removes what finished jobs left behind: staged files (if the worker died before removing them), staged
/// objects of no live job older than `grace` (an upload whose row was never committed), and staging
/// tables (if a worker died mid-load of a job that then failed for good). Also expired resumable uploads,
/// and objects of resumable uploads that have no row (older than `grace`).
async fn janitor(pool: &PgPool, staging: &StagingArea, grace: Duration) {
    match queue::delete_expired_uploads(pool).await {
        Ok(expired) => {
            for id in expired {
                staging.remove_upload(id).await;
                tracing::info!(upload = %id, "an expired resumable upload was deleted");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not delete expired resumable uploads"),
    }
    let with_objects = staging.uploads_with_objects_older_than(grace).await;
    for id in queue::missing_uploads_among(pool, &with_objects).await.unwrap_or_default() {
        staging.remove_upload(id).await;
    }
    if let Err(e) = queue::forget_expired_idempotency_keys(pool).await {
        tracing::warn!(error = %e, "could not forget expired idempotency keys");
    }
    if let Ok(done) = queue::finished_with_staged_files(pool).await {
        for (id, _) in done {
            staging.remove_job(id).await;
            let _ = queue::clear_staged_path(pool, id).await;
        }
    }
    for id in ended_jobs(pool, &staging.jobs_with_objects_older_than(grace).await).await {
        staging.remove_job(id).await;
    }
    // Scratch directories of jobs that ended without their worker cleaning up (it died, or was stopped).
    for id in ended_jobs(pool, &staging.jobs_with_work_dirs().await).await {
        staging.remove_job(id).await;
    }
    let ids = table::jobs_with_staging_tables(pool).await.unwrap_or_default();
    for id in ended_jobs(pool, &ids).await {
        let _ = table::drop_job_tables(pool, id).await;
    }
}

/// Which of `ids` are finished jobs, or jobs that no longer exist at all (none, if the database cannot say).
async fn ended_jobs(pool: &PgPool, ids: &[uuid::Uuid]) -> Vec<uuid::Uuid> {
    queue::ended_among(pool, ids).await.unwrap_or_default()
}
