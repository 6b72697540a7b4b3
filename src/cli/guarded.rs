//! What every mutating command (deploy, destroy) does around its work: take
//! the environment's lock before discovering anything, so the plan it applies
//! is not made stale by another operator; afterwards append the run to the
//! environment's history and release the lock, whatever the outcome.

use crate::engine::plan::Plan;
use crate::ops::Session;
use crate::state::{self, Lock, Record, Store};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct Guarded {
    store: Store,
    lock: Lock,
    command: &'static str,
    started: SystemTime,
    plan: Mutex<Option<serde_json::Value>>,
}

/// Parses `--lock-timeout` (`0s`, `30s`, `5m`).
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e} (e.g. 30s or 5m)"))
}

pub async fn begin(
    session: &Session,
    command: &'static str,
    timeout: Duration,
) -> anyhow::Result<Guarded> {
    let store = session.state().await?;
    let lock = Lock::acquire(
        &store,
        &session.config.name,
        command,
        &session.caller,
        timeout,
    )
    .await?;
    if let Some(previous) = &lock.info.took_over {
        eprintln!(
            "warning: took over the lock of `{}` from {}: its lease had expired (its holder stopped without releasing it)",
            session.config.name,
            previous.describe()
        );
    }
    Ok(Guarded {
        store,
        lock,
        command,
        started: SystemTime::now(),
        plan: Mutex::new(None),
    })
}

impl Guarded {
    /// The state bucket this command holds the lock in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The plan's summary goes into the history record.
    pub fn note_plan(&self, plan: &Plan) {
        *self.plan.lock().unwrap() = Some(serde_json::json!({
            "summary": plan.summary,
            "changes": plan.changes.iter().map(|c| format!("{} {}", c.action.symbol(), c.id)).collect::<Vec<_>>(),
        }));
    }

    /// Records the run and releases the lock. Failing to do either is
    /// reported, but does not change the command's own outcome.
    pub async fn finish(self, session: &Session, outcome: &anyhow::Result<ExitCode>) {
        let result = match outcome {
            Ok(_) => "ok",
            Err(err)
                if err
                    .downcast_ref::<crate::interrupt::Interrupted>()
                    .is_some()
                    || crate::interrupt::requested() =>
            {
                "interrupted"
            }
            Err(err)
                if err.to_string().contains(" refused") || err.to_string().contains("refusing") =>
            {
                "refused"
            }
            Err(_) => "error",
        };
        let started_at = self
            .started
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let record = Record {
            command: self.command.to_string(),
            environment: session.config.name.clone(),
            who: self.lock.info.who.clone(),
            host: self.lock.info.host.clone(),
            poolside_version: concat!(
                env!("CARGO_PKG_VERSION"),
                " (",
                env!("POOLSIDE_GIT_COMMIT"),
                ")"
            )
            .to_string(),
            started_at,
            duration_ms: self
                .started
                .elapsed()
                .map(|d| d.as_millis() as u64)
                .unwrap_or_default(),
            result: result.to_string(),
            error: outcome.as_ref().err().map(|e| e.to_string()),
            plan: self.plan.lock().unwrap().take(),
            release: Some(serde_json::json!({
                "image": format!("{}{}", session.config.api.image_source, session.config.api.image_suffix),
                "schema_version": crate::database::migrations::shipped().last().map(|m| m.migration.version),
            })),
            api_calls: session.cx.clients.stats.snapshot().total_calls,
            lock_id: self.lock.info.lock_id.clone(),
            took_over_lock: self.lock.info.took_over.as_ref().map(|l| l.lock_id.clone()),
        };
        if let Err(err) = state::append(&self.store, &record).await {
            eprintln!("warning: could not record this run in the history: {err:#}");
        }
        if let Err(err) = self.lock.release().await {
            eprintln!(
                "warning: could not release the lock of `{}`: {err:#}",
                session.config.name
            );
        }
    }
}
