//! The queue's promises: a job whose worker dies is done again, exactly once; a panic fails one job only;
//! per-user limits hold; shutdown drains or hands back; nothing stays pending or importing for ever.

use std::time::{Duration, Instant};

use crate::common::*;
use nix::sys::signal::Signal;
use sqlx::Connection;
use uuid::Uuid;

/// A CSV big enough to take a moment, small enough to keep tests quick.
fn rows_csv(n: usize) -> String {
    let mut s = String::from("id,name,lat,lon\n");
    for i in 0..n {
        s.push_str(&format!("{i},place {i},{},{}\n", (i % 170) as f64 * 0.5 - 42.0, (i % 350) as f64 - 175.0));
    }
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_in_the_middle_of_an_import_is_replaced_and_the_table_appears_once() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;
    let mut env = app.child_env();
    env.push(("GEOIMPORT_LEASE_SECS".into(), "2".into()));
    env.push(("GEOIMPORT_WORKERS".into(), "1".into()));
    let mut held = env.clone();
    held.push(("GEOIMPORT_TEST_HOLD_BEFORE_PUBLISH_MS".into(), "60000".into()));
    let mut doomed = ChildProcess::spawn(&["worker"], &held);

    let id = app.import(&u, "survivor.csv", rows_csv(5000), "").await;
    wait_for_state(&app.pool, id, &["importing"], Duration::from_secs(30)).await;
    // the load has reached its staging table and sits before publishing
    let start = Instant::now();
    while app.staging_tables().await.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(30), "no staging table appeared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    doomed.signal(Signal::SIGKILL);
    assert!(doomed.wait_exit(Duration::from_secs(5)).await);
    assert!(app.tables_of("ana").await.is_empty(), "nothing is published by a dead worker");

    let _rescuer = ChildProcess::spawn(&["worker"], &env);
    let status = wait_final_at(&app.client, &app.base, &u, id, Duration::from_secs(60)).await;
    assert_eq!(status["state"], "complete", "{status}");
    assert_eq!(status["rows_imported"], 5000);
    let (_, attempts, owner) = app.job_row(id).await;
    assert_eq!(attempts, 2);
    assert_eq!(owner, None);
    assert_eq!(app.tables_of("ana").await, ["survivor"]);
    assert_eq!(app.count("SELECT count(*) FROM ana.survivor").await, 5000);
    assert!(app.staging_tables().await.is_empty(), "the dead attempt's staging table is gone");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_that_keeps_losing_its_worker_fails_with_6671_after_three_attempts() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;
    let id = app.import(&u, "cursed.csv", "a\n1\n", "").await;
    // as if a third worker had claimed it and died
    app.abandon(id, "importing", 3).await;
    let workers = app.spawn_workers(|_| {});
    let status = app.wait_final(&u, id).await;
    assert_eq!(status["error_code"], 6671);
    assert_eq!(status["get_error_text"]["title"], "Stuck import job");

    // one lapse short of the limit: taken again and completed
    let id = app.import(&u, "unlucky.csv", "a\n1\n", "").await;
    app.abandon(id, "guessing", 1).await;
    let status = app.wait_final(&u, id).await;
    assert_eq!(status["state"], "complete");
    workers.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_fails_only_its_own_job_and_the_worker_goes_on() {
    let app = TestApp::start_with(|s| s.runtime.hooks.panic_on_file = Some("boom.csv".into())).await;
    let u = app.create_user("ana").await;
    let boom = app.import(&u, "boom.csv", "a\n1\n", "").await;
    let fine = app.import(&u, "fine.csv", "a\n1\n", "").await;
    let status = app.wait_final(&u, boom).await;
    assert_eq!(status["state"], "failure");
    assert_eq!(status["error_code"], 99999);
    assert!(status["get_error_text"]["what_about"].as_str().unwrap().contains("crashed"));
    assert_eq!(app.wait_final(&u, fine).await["state"], "complete");
    for i in 0..3 {
        assert_eq!(app.import_ok(&u, &format!("after_{i}.csv"), "a\n1\n", "").await["state"], "complete");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_user_runs_at_most_their_limit_at_once_and_the_rest_wait() {
    let app = TestApp::start_with(|s| {
        s.runtime.workers = 4;
        s.runtime.hooks.hold_before_publish_ms = 400;
    })
    .await;
    // a second pool, as another process would be, claiming for the same user
    let other = app.spawn_workers(|s| s.runtime.workers = 4);
    let u = app.create_user("ana").await;
    app.set_limit(&u, "max_concurrent_imports", 1).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(app.import(&u, &format!("q{i}.csv"), "a\n1\n", "").await);
    }
    let mut most = 0;
    let start = Instant::now();
    loop {
        let running = app
            .count(&format!(
                "SELECT count(*) FROM geoimport.imports WHERE user_id = '{}' \
                 AND state IN ('uploading','unpacking','guessing','importing')",
                u.id
            ))
            .await;
        most = most.max(running);
        let done = app
            .count(&format!("SELECT count(*) FROM geoimport.imports WHERE user_id = '{}' AND state = 'complete'", u.id))
            .await;
        if done == 3 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(most, 1, "more than one import of the user ran at once");
    other.stop().await;
}

/// Records every state each import passes through, in order, in `public.state_log` (a trigger of the
/// test's database): states too short-lived for a client to see are recorded too.
async fn record_states(app: &TestApp) {
    sqlx::raw_sql(
        "CREATE TABLE public.state_log (n bigserial, id uuid, state text);
         CREATE FUNCTION public.log_state() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN INSERT INTO public.state_log (id, state) VALUES (NEW.id, NEW.state); RETURN NEW; END $$;
         CREATE TRIGGER log_state AFTER INSERT OR UPDATE OF state ON geoimport.imports
           FOR EACH ROW EXECUTE FUNCTION public.log_state();",
    )
    .execute(&app.pool)
    .await
    .unwrap();
}

async fn states_of(app: &TestApp, id: Uuid) -> Vec<String> {
    let states: Vec<String> = sqlx::query_scalar("SELECT state FROM public.state_log WHERE id = $1 ORDER BY n")
        .bind(id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    // An update that leaves the state as it was is no step.
    let mut steps = states;
    steps.dedup();
    steps
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_and_a_url_import_pass_through_every_state_in_order() {
    let fx = crate::common::fixture::Fixture::start().await;
    let app = TestApp::start_with(|s| s.runtime.url_allow = vec!["127.0.0.1/32".parse().unwrap()]).await;
    record_states(&app).await;
    let u = app.create_user("ana").await;
    let id = app.import(&u, "watched.csv", rows_csv(100), "").await;
    assert_eq!(app.wait_final(&u, id).await["state"], "complete");
    assert_eq!(states_of(&app, id).await, ["pending", "unpacking", "guessing", "importing", "complete"]);
    // A URL import downloads in `uploading`.
    let status = app.import_url(&u, &fx.url("/data/sample.csv")).await;
    assert_eq!(status["state"], "complete", "{status:#}");
    let id: Uuid = status["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(states_of(&app, id).await, ["pending", "uploading", "unpacking", "guessing", "importing", "complete"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_completing_transaction_waits_for_the_states_sent_before_it() {
    // Each state is written late; an import publishing before they are in would lose them from the row's
    // history (a final row refuses them), as a loaded CI machine once saw.
    let app = TestApp::start_with(|s| s.runtime.hooks.slow_state_writes_ms = 300).await;
    record_states(&app).await;
    let u = app.create_user("ana").await;
    let id = app.import(&u, "late.csv", rows_csv(10), "").await;
    assert_eq!(app.wait_final(&u, id).await["state"], "complete");
    assert_eq!(states_of(&app, id).await, ["pending", "unpacking", "guessing", "importing", "complete"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_queued_while_no_worker_runs_all_finish_once_one_starts() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(app.import(&u, &format!("waiting_{i}.csv"), "a\n1\n", "").await);
    }
    let workers = app.spawn_workers(|_| {});
    for id in ids {
        assert_eq!(app.wait_final(&u, id).await["state"], "complete");
    }
    workers.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn many_workers_never_run_the_same_job_twice() {
    let app = TestApp::start_with(|s| s.runtime.workers = 3).await;
    let u = app.create_user("ana").await;
    app.set_limit(&u, "max_concurrent_imports", 100).await;
    let second = app.spawn_workers(|s| s.runtime.workers = 3);
    let mut ids = Vec::new();
    for i in 0..24 {
        ids.push(app.import(&u, &format!("many_{i}.csv"), "a\n1\n", "").await);
    }
    for id in &ids {
        assert_eq!(app.wait_final(&u, *id).await["state"], "complete");
    }
    let attempts = app.count(&format!("SELECT max(attempts) FROM geoimport.imports WHERE user_id = '{}'", u.id)).await;
    assert_eq!(attempts, 1, "a job was claimed twice");
    assert_eq!(app.tables_of("ana").await.len(), 24);
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_hands_a_long_job_back_and_lets_a_short_one_finish() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;

    // A job that cannot finish within the grace period goes back to the queue, not counted as an attempt.
    let mut env = app.child_env();
    env.push(("GEOIMPORT_SHUTDOWN_GRACE_SECS".into(), "1".into()));
    env.push(("GEOIMPORT_TEST_HOLD_BEFORE_PUBLISH_MS".into(), "60000".into()));
    let mut server = ChildProcess::serve(&env).await.process;
    let id = app.import(&u, "long.csv", "a\n1\n", "").await;
    wait_for_state(&app.pool, id, &["importing"], Duration::from_secs(30)).await;
    server.signal(Signal::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(15)).await, "serve did not exit after SIGTERM");
    let (state, attempts, owner) = app.job_row(id).await;
    assert_eq!((state.as_str(), attempts, owner), ("pending", 0, None));
    assert!(app.staging_tables().await.is_empty());

    // A job that finishes within the grace period completes before the process exits.
    let mut env = app.child_env();
    env.push(("GEOIMPORT_SHUTDOWN_GRACE_SECS".into(), "30".into()));
    env.push(("GEOIMPORT_TEST_HOLD_BEFORE_PUBLISH_MS".into(), "1500".into()));
    let mut worker = ChildProcess::spawn(&["worker"], &env);
    wait_for_state(&app.pool, id, &["importing"], Duration::from_secs(30)).await;
    worker.signal(Signal::SIGTERM);
    assert!(worker.wait_exit(Duration::from_secs(20)).await);
    assert_eq!(app.job_row(id).await.0, "complete");
    assert_eq!(app.tables_of("ana").await, ["long"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claim_lost_and_taken_again_by_the_same_worker_cannot_act_for_the_old_claim() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;
    let id = app.import(&u, "twice.csv", "a\n1\n", "").await;
    let lease = Duration::from_secs(30);
    let first = geoimport::queue::claim_next(&app.pool, "worker-a", lease, &[]).await.unwrap().unwrap();
    // the lease lapses (the database was away) and the reaper puts the job back
    sqlx::query("UPDATE geoimport.imports SET lease_expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    geoimport::queue::reclaim_expired(&app.pool, 3).await.unwrap();
    let second = geoimport::queue::claim_next(&app.pool, "worker-a", lease, &[]).await.unwrap().unwrap();
    let (old, new) = (first.lease_owner.unwrap(), second.lease_owner.unwrap());
    assert_ne!(old, new, "each claim has its own token");
    assert!(!geoimport::queue::renew_lease(&app.pool, id, &old, lease).await.unwrap());
    let error = geoimport::errors::ImportError::unknown("stale");
    assert!(!geoimport::queue::fail(&app.pool, id, &old, &error, None).await.unwrap());
    assert!(geoimport::queue::renew_lease(&app.pool, id, &new, lease).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_notification_connection_is_made_again_after_the_database_was_out_of_reach() {
    // The server reaches its database through a switch that the test cuts for a moment.
    let mut db = TestDb::create_for_app().await;
    let switch = crate::common::switch::Switch::start(5432).await;
    let mut url = url::Url::parse(&db.url).unwrap();
    assert_eq!(url.port(), Some(5432), "the test database is on the local cluster");
    url.set_port(Some(switch.port)).unwrap();
    db.url = url.to_string();
    let name = db.name.clone();
    let _app = TestApp::start_on(db, |_| {}).await;
    let mut admin = sqlx::PgConnection::connect(&url_for(&name)).await.unwrap();
    let listening_since = async |admin: &mut sqlx::PgConnection, since: &str| -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND query ILIKE 'LISTEN%' AND backend_start > $1::timestamptz",
        )
        .bind(since)
        .fetch_one(admin)
        .await
        .unwrap()
    };
    let wait_listening = async |admin: &mut sqlx::PgConnection, since: &str| {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if listening_since(admin, since).await == 1 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    };
    assert!(wait_listening(&mut admin, "-infinity").await, "the workers listen");
    logs::capture();
    let failed_attempts = || logs::text().matches("no notification connection; polling meanwhile").count();
    let before = failed_attempts();
    switch.cut().await;
    // Back only once an attempt to listen again has failed (the server used to give up after one).
    let start = Instant::now();
    while failed_attempts() == before {
        assert!(start.elapsed() < Duration::from_secs(15), "the workers never tried to listen again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let back: String = sqlx::query_scalar("SELECT now()::text").fetch_one(&mut admin).await.unwrap();
    switch.restore();
    // The pool used to poll for good once that failed; it now tries again (within 4 s at this point).
    assert!(wait_listening(&mut admin, &back).await, "the workers did not listen again");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_notification_idle_workers_find_a_due_job_by_polling() {
    let app = TestApp::start_with(|s| s.runtime.workers = 0).await;
    let u = app.create_user("ana").await;
    // Not due yet when the workers start, so they do not take it then.
    let id = app.import(&u, "later.csv", "a\n1\n", "").await;
    app.postpone(id).await;
    let workers = app.spawn_workers(|s| s.runtime.poll_ms = 300);
    // Due now, and nobody is told: an UPDATE sends no notification.
    sqlx::query("UPDATE geoimport.imports SET run_after = now() WHERE id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    let status = app.wait_final(&u, id).await;
    assert_eq!(status["state"], "complete", "{status:#}");
    workers.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_job_has_its_lease_renewed_every_third_of_it() {
    let app = TestApp::start_with(|s| {
        s.runtime.lease_secs = 3;
        s.runtime.hooks.hold_before_publish_ms = 5000;
    })
    .await;
    let u = app.create_user("ana").await;
    let id = app.import(&u, "held.csv", "a\n1\n", "").await;
    let lease = || async {
        sqlx::query_scalar::<_, f64>(
            "SELECT extract(epoch FROM lease_expires_at)::float8 FROM geoimport.imports WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    wait_for_state(&app.pool, id, &["importing"], Duration::from_secs(30)).await;
    let first = lease().await;
    // Two renewals' time later (one a second), the lease reaches further, and the job still runs.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let later = lease().await;
    assert!(later - first >= 1.5, "the lease moved {:.1} s in 2.2 s", later - first);
    assert_eq!(app.job_row(id).await.0, "importing");
    assert_eq!(app.wait_final(&u, id).await["state"], "complete");
}
