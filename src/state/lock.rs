//! The lock of each environment, `locks/<env>.json`: taken with a
//! conditional create, renewed while its holder runs, taken over once its
//! lease expired.

use super::store::{now_s, Precondition, Put, Refusal, Store};
use anyhow::{anyhow, bail};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

/// How long a lock holds without renewal, unless `POOLSIDE_LOCK_LEASE`
/// (e.g. `30s`) says otherwise: the tests shorten it to see a takeover.
pub fn lease() -> Duration {
    std::env::var("POOLSIDE_LOCK_LEASE")
        .ok()
        .and_then(|text| humantime::parse_duration(&text).ok())
        .filter(|d| *d >= Duration::from_secs(2))
        .unwrap_or(Duration::from_secs(120))
}

/// The holder renews its lease four times per lease.
pub(super) fn renew_every() -> Duration {
    lease() / 4
}

/// Who holds an environment's lock, as the lock object says.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LockInfo {
    pub lock_id: String,
    pub environment: String,
    pub who: String,
    pub host: String,
    pub command: String,
    pub pid: u32,
    pub started_at: u64,
    pub renewed_at: u64,
    pub lease_seconds: u64,
    /// The lock this one took over after its lease expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_over: Option<Box<LockInfo>>,
    /// The boot and pid namespace the holder's pid belongs to, and when that
    /// process started: with them a command on the same machine can tell
    /// the holder has gone (`process::pid_scope`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_start: Option<u64>,
}

impl LockInfo {
    pub(super) fn expired(&self, now: u64) -> bool {
        now > self.renewed_at + self.lease_seconds
    }

    /// Its holder ran in this boot of this machine and pid namespace, and
    /// its process is gone (or its pid now belongs to a process started
    /// since): the lock is dead now, not when its lease runs out. Anywhere
    /// a pid cannot be checked (another machine or container, another OS,
    /// /proc hiding processes, a lock from an older poolside), the lease
    /// decides.
    pub fn holder_gone_from_this_host(&self) -> bool {
        let Some(scope) = &self.pid_scope else {
            return false;
        };
        self.host == hostname()
            && crate::process::pid_scope().as_ref() == Some(scope)
            && crate::process::start_time(self.pid) != self.process_start
    }

    /// "arn:... on host (deploy, pid 123) since 2026-11-26T16:50:00Z".
    pub fn describe(&self) -> String {
        format!(
            "{} on {} ({}, pid {}) since {}, lease renewed {} s ago; lock id {}",
            self.who,
            self.host,
            self.command,
            self.pid,
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(self.started_at)),
            now_s().saturating_sub(self.renewed_at),
            self.lock_id
        )
    }
}

pub(super) fn lock_key(environment: &str) -> String {
    format!("locks/{environment}.json")
}

/// The other party, when the lock is held.
#[derive(Debug, thiserror::Error)]
#[error("environment `{environment}` is locked by {}: another poolside command is running on it. Wait for it to finish, pass --lock-timeout 10m to wait here, or, if its holder died, run `poolside unlock --env {environment} --lock-id {}` (a lock whose lease of {} s expired is taken over by the next command anyway)", holder.describe(), holder.lock_id, holder.lease_seconds)]
pub struct Locked {
    pub environment: String,
    pub holder: LockInfo,
}

/// A held lock, renewed in the background until released.
pub struct Lock {
    store: Store,
    key: String,
    pub info: LockInfo,
    etag: Arc<Mutex<String>>,
    pub(super) renewal: tokio::task::JoinHandle<()>,
}

impl Lock {
    /// Takes the environment's lock, waiting up to `timeout` for its holder.
    pub async fn acquire(
        store: &Store,
        environment: &str,
        command: &str,
        who: &str,
        timeout: Duration,
    ) -> anyhow::Result<Lock> {
        let key = lock_key(environment);
        let started = tokio::time::Instant::now();
        let mut info = LockInfo {
            lock_id: format!("{:016x}", rand::random::<u64>()),
            environment: environment.to_string(),
            who: who.to_string(),
            host: hostname(),
            command: command.to_string(),
            pid: std::process::id(),
            started_at: now_s(),
            renewed_at: now_s(),
            lease_seconds: lease().as_secs(),
            took_over: None,
            pid_scope: crate::process::pid_scope(),
            process_start: crate::process::start_time(std::process::id()),
        };
        loop {
            info.renewed_at = now_s();
            let body = serde_json::to_vec(&info)?;
            if let Some(etag) = store.write(&key, body, Precondition::Absent).await? {
                return Ok(Lock::held(store, key, info, etag));
            }
            let Some((held, etag)) = store.read(&key).await? else {
                continue; // released between the two calls
            };
            let holder: LockInfo = serde_json::from_slice(&held).map_err(|e| {
                anyhow!(
                    "the lock object s3://{}/{key} is not a poolside lock ({e}): remove it by hand",
                    store.bucket
                )
            })?;
            if holder.expired(now_s()) || holder.holder_gone_from_this_host() {
                info.took_over = Some(Box::new(holder.clone()));
                info.renewed_at = now_s();
                let body = serde_json::to_vec(&info)?;
                if let Some(etag) = store.write(&key, body, Precondition::Is(&etag)).await? {
                    tracing::warn!(previous = %holder.describe(), "took over a dead holder's lock");
                    return Ok(Lock::held(store, key, info, etag));
                }
                info.took_over = None;
                continue; // someone else took it over first
            }
            if started.elapsed() >= timeout {
                return Err(Locked {
                    environment: environment.to_string(),
                    holder,
                }
                .into());
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = crate::interrupt::wait() => return Err(crate::interrupt::Interrupted.into()),
            }
        }
    }

    fn held(store: &Store, key: String, info: LockInfo, etag: String) -> Lock {
        let etag = Arc::new(Mutex::new(etag));
        let renewal = tokio::spawn(renew(
            store.clone(),
            key.clone(),
            info.clone(),
            etag.clone(),
        ));
        Lock {
            store: store.clone(),
            key,
            info,
            etag,
            renewal,
        }
    }

    /// Releases the lock, unless someone took it over (then it says so).
    pub async fn release(self) -> anyhow::Result<()> {
        self.renewal.abort();
        let etag = self.etag.lock().unwrap().clone();
        if !self.store.delete_if(&self.key, &etag).await? {
            tracing::warn!(
                "the lock of `{}` was no longer ours when released (taken over after an expired lease?)",
                self.info.environment
            );
        }
        Ok(())
    }
}

async fn renew(store: Store, key: String, mut info: LockInfo, etag: Arc<Mutex<String>>) {
    let mut wait = renew_every();
    loop {
        tokio::time::sleep(wait).await;
        wait = renew_every();
        match renew_once(&store, &key, &mut info, &etag).await {
            Renewal::Renewed => {}
            Renewal::Again => wait = Duration::from_secs(1),
            Renewal::Lost(why) => {
                // Nothing more may change under a lock this run no longer
                // holds: stop as Ctrl-C does, before the next step.
                tracing::error!(
                    "the lock of `{}` {why}: stopping before the next change. Run the command again once nobody else is changing the environment",
                    info.environment
                );
                crate::interrupt::request_stop();
                return;
            }
        }
    }
}

/// What one renewal of the lease found.
#[derive(Debug, PartialEq)]
pub(super) enum Renewal {
    Renewed,
    /// Not renewed this time (a passing error, or a concurrent write that S3
    /// asks to retry): try again soon, with the ETag read now.
    Again,
    /// The lock is no longer this run's; says why.
    Lost(String),
}

pub(super) async fn renew_once(
    store: &Store,
    key: &str,
    info: &mut LockInfo,
    etag: &Mutex<String>,
) -> Renewal {
    info.renewed_at = now_s();
    let Ok(body) = serde_json::to_vec(&*info) else {
        return Renewal::Again;
    };
    let current = etag.lock().unwrap().clone();
    match store.put(key, body, Precondition::Is(&current)).await {
        Ok(Put::Written(new)) => {
            *etag.lock().unwrap() = new;
            Renewal::Renewed
        }
        Ok(Put::Refused(Refusal::Missing)) => {
            Renewal::Lost("was removed (`poolside unlock`?) while this run held it".into())
        }
        // 409, or 412 after a write of ours whose answer was lost: the
        // object may still be this run's lock under another ETag.
        Ok(Put::Refused(Refusal::Conflict | Refusal::PreconditionFailed)) => {
            match store.read(key).await {
                Ok(Some((body, fresh))) => {
                    let holder: Option<LockInfo> = serde_json::from_slice(&body).ok();
                    match holder {
                        Some(holder) if holder.lock_id == info.lock_id => {
                            *etag.lock().unwrap() = fresh;
                            Renewal::Again
                        }
                        Some(holder) => {
                            Renewal::Lost(format!("was taken over by {}", holder.describe()))
                        }
                        None => Renewal::Lost(
                            "was replaced by an object that is not a poolside lock".into(),
                        ),
                    }
                }
                Ok(None) => {
                    Renewal::Lost("was removed (`poolside unlock`?) while this run held it".into())
                }
                Err(err) => {
                    tracing::warn!(%err, "could not read the lock back; retrying");
                    Renewal::Again
                }
            }
        }
        Err(err) => {
            tracing::warn!(%err, "could not renew the lock; retrying");
            Renewal::Again
        }
    }
}

/// Removes a lock by hand, only if it is the one named.
pub async fn unlock(store: &Store, environment: &str, lock_id: &str) -> anyhow::Result<LockInfo> {
    let key = lock_key(environment);
    let Some((body, etag)) = store.read(&key).await? else {
        bail!("environment `{environment}` is not locked");
    };
    let holder: LockInfo = serde_json::from_slice(&body).map_err(|e| {
        anyhow!(
            "the lock object s3://{}/{key} is not a poolside lock ({e})",
            store.bucket
        )
    })?;
    if holder.lock_id != lock_id {
        bail!(
            "environment `{environment}` is locked by {}, not by lock id {lock_id}: nothing was removed",
            holder.describe()
        );
    }
    if !store.delete_if(&key, &etag).await? {
        bail!("the lock of `{environment}` changed while it was being removed: run unlock again after checking who holds it");
    }
    Ok(holder)
}

/// Who holds the environment's lock, if anyone.
pub async fn lock_holder(store: &Store, environment: &str) -> anyhow::Result<Option<LockInfo>> {
    match store.read(&lock_key(environment)).await? {
        Some((body, _)) => Ok(serde_json::from_slice(&body).ok()),
        None => Ok(None),
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}
