//! Index builds in migrations: the memory they get, and how far they are.
//!
//! pgvector's HNSW and IVFFlat builds are fast when the graph fits in
//! `maintenance_work_mem` and slow (hours, on large tables) when it does not.
//! RDS's default is about 1/63 of the instance's memory; the schema step
//! gives its migration session an eighth, from the instance class, unless a
//! migration sets its own (a `SET` in the migration comes later and wins).
//! While a migration runs, deploy reads `pg_stat_progress_create_index`
//! for its session and says how far a build is.

use super::migrations;
use crate::model::ResourceId;
use crate::resources::Waits;
use serde::Serialize;
use sqlx::{Connection as _, PgConnection, Row};
use std::time::{Duration, Instant};

/// The memory of an RDS instance class in GiB, for the classes poolside's
/// phases use and their neighbours; `None` for one it does not know.
pub fn class_memory_gib(class: &str) -> Option<u64> {
    let mut parts = class.strip_prefix("db.")?.split('.');
    let (family, size) = (parts.next()?, parts.next()?);
    let burstable = match size {
        "micro" => Some(1),
        "small" => Some(2),
        "medium" => Some(4),
        _ => None,
    };
    if family.starts_with('t') {
        return burstable.or_else(|| Some(8 * units(size)?));
    }
    // Memory per "large": r (memory optimised) 16 GiB, m (general) 8, c 4.
    let per_large = match family.chars().next()? {
        'r' | 'x' => 16,
        'm' => 8,
        'c' => 4,
        _ => return None,
    };
    Some(per_large * units(size)?)
}

/// How many "large" an instance size is: xlarge 2, 4xlarge 8.
fn units(size: &str) -> Option<u64> {
    match size {
        "large" => Some(1),
        "xlarge" => Some(2),
        _ => size
            .strip_suffix("xlarge")?
            .parse::<u64>()
            .ok()
            .map(|n| n * 2),
    }
}

/// `maintenance_work_mem` for the migration session, in MB: an eighth of
/// the instance's memory, at least RDS's 64 MB default floor and at most 8 GB.
pub fn maintenance_work_mem_mb(class: &str) -> Option<u64> {
    class_memory_gib(class).map(|gib| (gib * 1024 / 8).clamp(64, 8 * 1024))
}

/// Gives the session `mb` of `maintenance_work_mem` for what it builds next.
pub async fn set_maintenance_work_mem(conn: &mut PgConnection, mb: u64) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("SET maintenance_work_mem = '{mb}MB'"))
        .execute(conn)
        .await
        .map(|_| ())
}

/// How far an index build of one session is.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Progress {
    pub index: String,
    /// PostgreSQL's phase (`building index: loading tuples in tree`, ...).
    pub phase: String,
    pub blocks_done: i64,
    pub blocks_total: i64,
    pub tuples_done: i64,
    pub tuples_total: i64,
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "index {}: {}", self.index, self.phase)?;
        let share = |done: i64, total: i64| (done * 100 / total.max(1)).min(100);
        if self.blocks_total > 0 {
            write!(
                f,
                ", {}% of the table's blocks",
                share(self.blocks_done, self.blocks_total)
            )?;
        } else if self.tuples_total > 0 {
            write!(
                f,
                ", {}% of its rows",
                share(self.tuples_done, self.tuples_total)
            )?;
        }
        Ok(())
    }
}

/// The index builds under way in the session `pid` (at most one).
pub async fn progress(conn: &mut PgConnection, pid: i32) -> Result<Vec<Progress>, sqlx::Error> {
    let rows = sqlx::query(
        // A new index (and a table the same migration made) is not visible
        // to this session until the migration commits.
        "SELECT coalesce(i.relname::text, 'on ' || t.relname::text, 'on a new table') AS index,
                p.phase, p.blocks_done, p.blocks_total, p.tuples_done, p.tuples_total
           FROM pg_stat_progress_create_index p
           LEFT JOIN pg_class i ON i.oid = p.index_relid
           LEFT JOIN pg_class t ON t.oid = p.relid
          WHERE p.pid = $1",
    )
    .bind(pid)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Progress {
            index: row.get("index"),
            phase: row.get("phase"),
            blocks_done: row.get("blocks_done"),
            blocks_total: row.get("blocks_total"),
            tuples_done: row.get("tuples_done"),
            tuples_total: row.get("tuples_total"),
        })
        .collect())
}

/// A second session that reads how far the migrations' index builds are,
/// and where to say it.
pub struct Watch<'a> {
    pub conn: PgConnection,
    pub waits: &'a Waits<'a>,
    /// How often to look: [`PROGRESS_EVERY`] but in tests.
    pub every: Duration,
}

/// How often a running migration's index build is looked at.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Applies `shipped` on `app`, saying every so often how far an
/// index build in it is (`pg_stat_progress_create_index`).
pub async fn migrate_watched(
    app: &mut PgConnection,
    shipped: &[migrations::Shipped],
    watch: Option<Watch<'_>>,
) -> Result<Vec<migrations::Applied>, anyhow::Error> {
    let Some(mut watch) = watch else {
        return Ok(migrations::migrate(app, shipped).await?);
    };
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *app)
        .await?;
    let step = ResourceId("database/schema".into());
    let started = Instant::now();
    let migrating = migrations::migrate(app, shipped);
    tokio::pin!(migrating);
    let mut ticks =
        tokio::time::interval_at(tokio::time::Instant::now() + watch.every, watch.every);
    let migrated = loop {
        tokio::select! {
            done = &mut migrating => break done,
            _ = ticks.tick() => {
                // Informational: a failed look does not stop the migration.
                let Ok(builds) = progress(&mut watch.conn, pid).await else { continue };
                for build in builds {
                    watch.waits.note(&step, &build.to_string(), started.elapsed(), Duration::ZERO);
                }
            }
        }
    };
    let _ = watch.conn.close().await;
    Ok(migrated?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phases_classes_get_an_eighth_of_their_memory() {
        assert_eq!(class_memory_gib("db.t4g.medium"), Some(4));
        assert_eq!(class_memory_gib("db.r6g.large"), Some(16));
        assert_eq!(class_memory_gib("db.r6g.xlarge"), Some(32));
        assert_eq!(class_memory_gib("db.m7g.4xlarge"), Some(64));
        assert_eq!(class_memory_gib("db.t4g.2xlarge"), Some(32));
        assert_eq!(maintenance_work_mem_mb("db.t4g.medium"), Some(512));
        assert_eq!(maintenance_work_mem_mb("db.r6g.xlarge"), Some(4096));
        assert_eq!(maintenance_work_mem_mb("db.r6g.16xlarge"), Some(8192));
        assert_eq!(maintenance_work_mem_mb("db.t4g.micro"), Some(128));
        assert_eq!(maintenance_work_mem_mb("db.zz9.large"), None);
        assert_eq!(maintenance_work_mem_mb("r6g.large"), None);
    }

    #[test]
    fn progress_reads_as_a_share_of_blocks_or_rows() {
        let mut p = Progress {
            index: "rag_documents_embedding_idx".into(),
            phase: "building index: loading tuples in tree".into(),
            blocks_done: 0,
            blocks_total: 0,
            tuples_done: 250,
            tuples_total: 1000,
        };
        assert_eq!(p.to_string(), "index rag_documents_embedding_idx: building index: loading tuples in tree, 25% of its rows");
        p.blocks_total = 200;
        p.blocks_done = 150;
        assert!(p.to_string().ends_with("75% of the table's blocks"));
    }
}
