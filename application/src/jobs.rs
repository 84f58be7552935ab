//! Timed jobs, run by tokio-cron-scheduler in every server process. Each run first takes the
//! job's advisory lock, so with several processes one of them does the work and the others
//! skip that tick; the work itself is idempotent, so a tick repeated by a later holder is
//! harmless.

use chrono::{DateTime, Utc};
use domain::worker::WorkerCommand;
use sqlx::PgPool;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::commands::CommandContext;
use crate::notifications::{notify, Recipient};
use crate::services::Services;

/// When the jobs run (cron with seconds, UTC). The analytics refresh is the HTTP side's own.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// `ANJIA_CERTIFICATE_EXPIRY_SCHEDULE`; by default at the top of every minute.
    pub certificate_expiry_schedule: String,
    /// `ANJIA_HOUSEKEEPING_SCHEDULE`; by default every hour at minute 17.
    pub housekeeping_schedule: String,
    /// `ANJIA_REMINDER_SCHEDULE`; by default every five seconds.
    pub reminder_schedule: String,
    /// `ANJIA_RECONCILE_SCHEDULE`; by default 16:30 UTC (00:30 in Beijing), for the day before.
    pub reconcile_schedule: String,
    /// `ANJIA_AUDIT_SCHEDULE`: when the event log's hash chains are verified; by default 18:00
    /// UTC (02:00 in Beijing).
    pub audit_schedule: String,
    /// `ANJIA_ANALYTICS_SCHEDULE`: when the analytics warehouse is refreshed; every five minutes.
    pub analytics_schedule: String,
}

impl Default for JobSettings {
    fn default() -> Self {
        JobSettings {
            certificate_expiry_schedule: "0 * * * * *".to_owned(),
            housekeeping_schedule: "0 17 * * * *".to_owned(),
            reminder_schedule: "*/5 * * * * *".to_owned(),
            reconcile_schedule: "0 30 16 * * *".to_owned(),
            audit_schedule: "0 0 18 * * *".to_owned(),
            analytics_schedule: "0 */5 * * * *".to_owned(),
        }
    }
}

/// A scheduler with every job of the application's, not yet started: the caller may add its own
/// (the analytics refresh) before starting it.
pub async fn schedule(services: Services, settings: &JobSettings) -> anyhow::Result<JobScheduler> {
    let scheduler = JobScheduler::new().await?;
    let job_services = services.clone();
    let job = Job::new_async(
        settings.certificate_expiry_schedule.as_str(),
        move |_id, _lock| {
            let services = job_services.clone();
            Box::pin(async move {
                match expire_certificates(&services, Utc::now()).await {
                    Ok(0) => {}
                    Ok(expired) => tracing::info!(expired, "certificates expired"),
                    Err(error) => tracing::error!(
                        error = format!("{error:#}"),
                        "the certificate expiry job failed"
                    ),
                }
            })
        },
    )?;
    scheduler.add(job).await?;
    let job_services = services.clone();
    let purge = Job::new_async(
        settings.housekeeping_schedule.as_str(),
        move |_id, _lock| {
            let services = job_services.clone();
            Box::pin(async move {
                match purge_expired(&services.pool).await {
                    Ok(Some(removed)) if removed > 0 => {
                        tracing::info!(removed, "expired records purged")
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::error!(error = format!("{error:#}"), "the housekeeping job failed")
                    }
                }
            })
        },
    )?;
    scheduler.add(purge).await?;
    let job_services = services.clone();
    let dispatch = Job::new_async(services.dispatch.schedule.as_str(), move |_id, _lock| {
        let services = job_services.clone();
        Box::pin(async move {
            match dispatch_tick(&services, Utc::now()).await {
                Ok(Some(report))
                    if report.assigned
                        + report.escalated
                        + report.expired_unpaid
                        + report.released
                        > 0 =>
                {
                    tracing::info!(?report, "dispatch tick")
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "the dispatch job failed")
                }
            }
        })
    })?;
    scheduler.add(dispatch).await?;
    let job_services = services.clone();
    let reminders = Job::new_async(settings.reminder_schedule.as_str(), move |_id, _lock| {
        let services = job_services.clone();
        Box::pin(async move {
            if let Err(error) = deliver_reminders(&services).await {
                tracing::error!(error = format!("{error:#}"), "the reminder job failed")
            }
        })
    })?;
    scheduler.add(reminders).await?;
    let job_services = services.clone();
    let money = Job::new_async(services.money.schedule.as_str(), move |_id, _lock| {
        let services = job_services.clone();
        Box::pin(async move {
            match exclusively(
                &services.pool,
                "money",
                crate::money::tick(&services, Utc::now()),
            )
            .await
            {
                Ok(Some(report))
                    if report.queried
                        + report.released
                        + report.settled_wallets
                        + report.payouts
                        > 0 =>
                {
                    tracing::info!(?report, "money tick")
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "the money job failed")
                }
            }
        })
    })?;
    scheduler.add(money).await?;
    let job_services = services.clone();
    let reconcile = Job::new_async(settings.reconcile_schedule.as_str(), move |_id, _lock| {
        let services = job_services.clone();
        Box::pin(async move {
            let yesterday = domain::values::business_day(Utc::now()) - chrono::Duration::days(1);
            if let Err(error) = exclusively(
                &services.pool,
                "reconcile",
                crate::payments::reconcile(&services, yesterday),
            )
            .await
            {
                tracing::error!(
                    error = format!("{error:#}"),
                    "the reconciliation job failed"
                )
            }
        })
    })?;
    scheduler.add(reconcile).await?;
    let job_services = services.clone();
    let audit = Job::new_async(settings.audit_schedule.as_str(), move |_id, _lock| {
        let services = job_services.clone();
        Box::pin(async move {
            if let Err(error) = exclusively(
                &services.pool,
                "audit",
                crate::audit::verify(&services.pool),
            )
            .await
            {
                tracing::error!(
                    error = format!("{error:#}"),
                    "the audit verification job failed"
                )
            }
        })
    })?;
    scheduler.add(audit).await?;
    let job_services = services.clone();
    let reviews = Job::new_async(services.reviews.schedule.as_str(), move |_id, _lock| {
        let services = job_services.clone();
        Box::pin(async move {
            match exclusively(
                &services.pool,
                "reviews",
                crate::reviews::record_defaults(&services, Utc::now()),
            )
            .await
            {
                Ok(Some(recorded)) if recorded > 0 => {
                    tracing::info!(recorded, "default reviews recorded")
                }
                Ok(_) => {}
                Err(error) => tracing::error!(
                    error = format!("{error:#}"),
                    "the default review job failed"
                ),
            }
        })
    })?;
    scheduler.add(reviews).await?;
    Ok(scheduler)
}

/// How long a stored idempotent response is replayed.
pub const IDEMPOTENCY_RETENTION_HOURS: i32 = 24;

/// Removes what has outlived its use: stored idempotent responses past their retention (they
/// may echo personal data), spent or expired one-time codes, OAuth states and link tickets.
pub async fn purge_expired(pool: &PgPool) -> anyhow::Result<Option<u64>> {
    exclusively(pool, "housekeeping", async {
        let mut removed = sqlx::query(
            "DELETE FROM idempotency WHERE created_at < now() - make_interval(hours => $1) AND status IS NOT NULL",
        )
        .bind(IDEMPOTENCY_RETENTION_HOURS)
        .execute(pool)
        .await?
        .rows_affected();
        for statement in [
            "DELETE FROM verification_codes WHERE expires_at < now() - interval '1 day'",
            "DELETE FROM oauth_states WHERE expires_at < now() - interval '1 day'",
            "DELETE FROM oauth_link_tickets WHERE expires_at < now() - interval '1 day'",
            "DELETE FROM log_events WHERE recorded_at < now() - interval '14 days'",
            "DELETE FROM named_holds WHERE held_until < now() - interval '1 day'",
            "DELETE FROM live_streams WHERE seen_at < now() - interval '1 hour'",
        ] {
            removed += sqlx::query(statement).execute(pool).await?.rows_affected();
        }
        anyhow::Ok(removed)
    })
    .await
}

/// The dispatcher's timers, an automatic round and reconciliation, in one process at a time.
pub async fn dispatch_tick(
    services: &Services,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<crate::dispatch::TickReport>> {
    exclusively(
        &services.pool,
        "dispatch",
        crate::dispatch::tick(services, now),
    )
    .await
}

/// Delivers due reminders until none are left. Several processes may run it at once: each
/// claims different rows.
pub async fn deliver_reminders(services: &Services) -> anyhow::Result<usize> {
    let outcome = async {
        let mut total = 0;
        loop {
            let delivered = crate::reminders::deliver_due(services, 100).await?;
            total += delivered.reminders;
            if delivered.reminders < 100 {
                return anyhow::Ok(total);
            }
        }
    }
    .await;
    count_run(&services.pool, "reminders", &outcome).await?;
    outcome
}

/// Counts a run of a job in `job_runs` (runs, failures, the last error), so operators and
/// tests can see the job is alive.
async fn count_run<T>(
    executor: impl sqlx::PgExecutor<'_>,
    name: &str,
    outcome: &anyhow::Result<T>,
) -> anyhow::Result<()> {
    let error = outcome.as_ref().err().map(|error| format!("{error:#}"));
    sqlx::query(
        "INSERT INTO job_runs (job, runs, failures, last_error) VALUES ($1, 1, $2, $3)
         ON CONFLICT (job) DO UPDATE SET runs = job_runs.runs + 1, failures = job_runs.failures + $2,
                last_run_at = now(), last_error = $3",
    )
    .bind(name)
    .bind(i64::from(error.is_some()))
    .bind(&error)
    .execute(executor)
    .await?;
    Ok(())
}

/// A stable advisory-lock key per job name.
fn job_key(name: &str) -> i64 {
    projections::advisory_key("job", name)
}

/// Runs `work` only if no other process is running the same job now.
pub async fn exclusively<F, T>(pool: &PgPool, name: &str, work: F) -> anyhow::Result<Option<T>>
where
    F: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut lock_connection = pool.acquire().await?;
    lock_connection.close_on_drop();
    let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(job_key(name))
        .fetch_one(&mut *lock_connection)
        .await?;
    if !held {
        return Ok(None);
    }
    let outcome = work.await;
    count_run(&mut *lock_connection, name, &outcome).await?;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(job_key(name))
        .execute(&mut *lock_connection)
        .await?;
    outcome.map(Some)
}

/// Marks every certificate past its date as expired, which takes its worker off dispatch for
/// the services that need it, and tells the worker and the admins. Returns how many expired.
pub async fn expire_certificates(services: &Services, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let today = domain::values::business_day(now);
    let outcome = exclusively(&services.pool, "certificate-expiry", async {
        let mut expired = 0;
        loop {
            let due = projections::workers::due_for_expiry(&services.pool, today, 200).await?;
            if due.is_empty() {
                return anyhow::Ok(expired);
            }
            let mut progressed = false;
            for certificate in due {
                let command = WorkerCommand::ExpireCertificate { certificate_id: certificate.certificate_id, today, now };
                let committed = services.workers.execute(certificate.worker_id, command, &CommandContext::system()).await?;
                if committed.events == 0 {
                    continue;
                }
                progressed = true;
                expired += 1;
                let kind = domain::onboarding::CertificateKind::ALL
                    .into_iter()
                    .find(|kind| kind.as_str() == certificate.kind)
                    .map(|kind| kind.labels())
                    .unwrap_or(("", "证书", "certificate"));
                let text = format!(
                    "{}（{}）已于 {} 到期，需要它的服务已暂停派单，请尽快更新。/ The {} ({}) expired on {}; services that need it are paused until it is renewed.",
                    kind.1, certificate.number, certificate.expires_on, kind.2, certificate.number, certificate.expires_on
                );
                notify(&services.pool, Recipient::Person(certificate.worker_id), "certificate_expired", "证书已到期 / Certificate expired", &text).await?;
                notify(
                    &services.pool,
                    Recipient::Role("admin"),
                    "certificate_expired",
                    "服务人员证书到期 / A worker's certificate expired",
                    &format!("服务人员 {} / Worker {}: {text}", certificate.worker_id, certificate.worker_id),
                )
                .await?;
            }
            // The read model catches up with the expiries shortly; stop rather than spin on it.
            if !progressed {
                return Ok(expired);
            }
        }
    })
    .await?;
    Ok(outcome.unwrap_or(0))
}
