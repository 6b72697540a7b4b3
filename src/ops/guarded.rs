//! What every mutating operation (deploy, destroy, promote, forget) does
//! around its work: take the environment's lock before discovering anything,
//! so the plan it applies is not made stale by another operator; afterwards
//! append the run to the environment's history and release the lock,
//! whatever the outcome. [`run`] is that skeleton; the operation notes what
//! it planned and did on the [`Guarded`] it is given.

use super::Session;
use crate::engine::plan::{Action, Plan};
use crate::model::ResourceId;
use crate::state::{self, Lock, Record, Store};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct Guarded {
    store: Store,
    lock: Lock,
    command: &'static str,
    started: SystemTime,
    planned: Mutex<Option<Vec<(ResourceId, Action)>>>,
    /// The plan's database differences (the schema step corrects them all
    /// or fails).
    database_changes: Mutex<usize>,
    done: Mutex<Vec<ResourceId>>,
    dry_run: Mutex<bool>,
    /// The image this run left serving, when not the session's file's (a
    /// release promotion rewrites the file's tag as it goes).
    image: Mutex<Option<String>>,
}

/// The answer at a confirmation prompt was not "yes": recorded as
/// `cancelled`, not as an error.
#[derive(Debug)]
pub struct Cancelled(pub String);

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Cancelled {}

/// Parses `--lock-timeout` (`0s`, `30s`, `5m`).
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e} (e.g. 30s or 5m)"))
}

/// Runs `work` holding the environment's lock, and records its outcome.
pub async fn run(
    session: &Session,
    command: &'static str,
    lock_timeout: Duration,
    work: impl AsyncFnOnce(&Guarded) -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    let guard = begin(session, command, lock_timeout).await?;
    let outcome = work(&guard).await;
    guard.finish(session, &outcome).await;
    outcome
}

async fn begin(
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
            "warning: took over the lock of `{}` from {}: its holder stopped without releasing it ({})",
            session.config.name,
            previous.describe(),
            if previous.holder_gone_from_this_host() {
                "its process no longer runs on this host"
            } else {
                "its lease had expired"
            }
        );
    }
    Ok(Guarded {
        store,
        lock,
        command,
        started: SystemTime::now(),
        planned: Mutex::new(None),
        database_changes: Mutex::new(0),
        done: Mutex::new(Vec::new()),
        dry_run: Mutex::new(false),
        image: Mutex::new(None),
    })
}

impl Guarded {
    /// The state bucket this command holds the lock in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The plan this run applies: a run that ends well records it.
    pub fn note_plan(&self, plan: &Plan) {
        *self.planned.lock().unwrap() = Some(
            plan.changes
                .iter()
                .map(|c| (c.id.clone(), c.action))
                .collect(),
        );
        *self.database_changes.lock().unwrap() = plan.summary.database;
    }

    /// Steps of the plan that finished: a run that does not end well
    /// records these, not the plan it meant to apply.
    pub fn note_done(&self, ids: &[ResourceId]) {
        self.done.lock().unwrap().extend(ids.iter().cloned());
    }

    /// This run only looked: it is recorded as `dry_run`, and does not
    /// count as serving a release (the bake clock).
    pub fn note_dry_run(&self) {
        *self.dry_run.lock().unwrap() = true;
    }

    /// The release this run leaves serving is `config`'s (the file as the
    /// run rewrote it), not the session's.
    pub fn note_release(&self, config: &crate::config::Config) {
        *self.image.lock().unwrap() = Some(released_image(config));
    }

    /// The history's `plan` field: the changes made (all of the plan when
    /// the run succeeded), with the plan's own summary when they differ.
    fn changes_made(&self, succeeded: bool) -> Option<serde_json::Value> {
        let planned = self.planned.lock().unwrap().clone()?;
        let made: Vec<(ResourceId, Action)> = if succeeded {
            planned.clone()
        } else {
            let done = self.done.lock().unwrap();
            planned
                .iter()
                .filter(|(id, _)| done.contains(id))
                .cloned()
                .collect()
        };
        let database = *self.database_changes.lock().unwrap();
        let summary = |changes: &[(ResourceId, Action)], database: usize| {
            let count = |action: Action| changes.iter().filter(|(_, a)| *a == action).count();
            serde_json::json!({
                "create": count(Action::Create),
                "update": count(Action::Update),
                "replace": count(Action::Replace),
                "delete": count(Action::Delete),
                "database": database,
            })
        };
        // The schema step corrects the database in the run that succeeds.
        let mut value = serde_json::json!({
            "summary": summary(&made, if succeeded { database } else { 0 }),
            "changes": made.iter().map(|(id, action)| format!("{} {id}", action.symbol())).collect::<Vec<_>>(),
        });
        if !succeeded {
            value["planned"] = summary(&planned, database);
        }
        Some(value)
    }

    /// Records the run and releases the lock. Failing to do either is
    /// reported, but does not change the command's own outcome.
    pub async fn finish(self, session: &Session, outcome: &anyhow::Result<ExitCode>) {
        let dry_run = *self.dry_run.lock().unwrap();
        let result = match outcome {
            Ok(_) if dry_run => "dry_run",
            Ok(_) => "ok",
            Err(err) if err.downcast_ref::<Cancelled>().is_some() => "cancelled",
            Err(err)
                if err
                    .downcast_ref::<crate::interrupt::Interrupted>()
                    .is_some()
                    || crate::interrupt::requested() =>
            {
                "interrupted"
            }
            // A look that found the gates failing is still a look (its
            // error says what failed): nothing was refused that was tried.
            Err(_) if dry_run => "dry_run",
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
            acting_as: session.acting_as.clone(),
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
            plan: self.changes_made(result == "ok"),
            release: Some(serde_json::json!({
                "image": self.image.lock().unwrap().clone().unwrap_or_else(|| released_image(&session.config)),
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

/// The published image a configuration runs (source and immutable tag or digest).
fn released_image(config: &crate::config::Config) -> String {
    format!("{}{}", config.api.image_source, config.api.image_suffix)
}
