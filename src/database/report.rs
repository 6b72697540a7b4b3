//! What the data tier did, as deploy reports it.

use super::{cron, migrations};
use serde::Serialize;

/// What the data tier did; empty lists and `false` mean nothing changed.
#[derive(Debug, Default, Serialize)]
pub struct DataTierReport {
    pub endpoint: String,
    pub database: String,
    pub rebooted_for_parameters: bool,
    /// Parameters wait for a reboot that deploy did not make (no
    /// `--reboot-now`, outside this maintenance window).
    pub reboot_deferred_to_window: Option<String>,
    /// pg_cron is not loaded until that reboot: the jobs were not reconciled.
    pub jobs_wait_for_reboot: bool,
    pub database_created: bool,
    pub migrations_applied: Vec<migrations::Applied>,
    /// `maintenance_work_mem` given to the migrations' session (from the
    /// instance class), when migrations ran.
    pub maintenance_work_mem_mb: Option<u64>,
    /// The manual snapshot taken before migrations that contract the schema.
    pub snapshot_before_migrations: Option<String>,
    /// poolside's pg_cron jobs paused while the migrations ran, and resumed
    /// after (none when no migration was pending).
    pub jobs_paused_for_migrations: Vec<String>,
    /// Of those, the ones whose run under way had not ended after two
    /// minutes: the migrations started anyway (their DDL waits for the
    /// run's locks).
    pub jobs_running_at_migration: Vec<String>,
    pub migrations_total: usize,
    pub authenticator_password_set: bool,
    /// ANALYZE ran after a major upgrade (pg_upgrade does not carry the
    /// planner's statistics over).
    pub analyzed_after_upgrade: bool,
    /// Extensions brought to the server's version (`vector 0.7.4 -> 0.8.0`).
    pub extensions_updated: Vec<String>,
    /// GRANTs and REVOKEs run to put back privileges changed by hand.
    pub privileges_restored: Vec<String>,
    /// PostgREST was told to reload its schema cache (`NOTIFY pgrst`):
    /// migrations ran or privileges were put back, so the running API
    /// would otherwise go on serving the schema it cached.
    pub schema_reloaded: bool,
    pub cron_database: String,
    pub jobs_changed: Vec<cron::JobChange>,
    /// Jobs deploy paused before a major upgrade, resumed now.
    pub jobs_resumed_after_upgrade: Vec<String>,
    /// Whether pg_cron's launcher runs, read after reconciling (`None`:
    /// not read, as by the schema task).
    pub jobs_scheduler_running: Option<bool>,
    pub jobs_total: usize,
    pub elapsed_ms: u64,
}
