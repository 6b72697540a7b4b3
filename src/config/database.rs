//! `[database]`: the RDS instance's engine, size, backups and names, how
//! deploy reaches it, and where the schema step runs.

use super::file::{DatabaseSection, DatabaseTls, EnvironmentFile, Phase, SchemaRunner};
use super::validator::{Checked, Validator};
use ipnet::Ipv4Net;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Database {
    /// The instance and its parameter group are named after the environment.
    pub engine_version: String,
    /// The major version, e.g. 16: it names the parameter group family.
    pub engine_major: u32,
    pub instance_class: String,
    pub allocated_storage_gb: u32,
    pub multi_az: bool,
    pub backup_retention_days: u32,
    /// When RDS may apply maintenance (weekly, UTC), and take backups (daily).
    pub maintenance_window: String,
    pub backup_window: String,
    /// Deploy takes a manual snapshot, and waits for it, before changing the
    /// instance class, the storage type or the major version.
    pub snapshot_before_changes: bool,
    pub deletion_protection: bool,
    /// Days of pg_cron's run history a job of poolside's keeps (the table
    /// grows without limit otherwise).
    pub cron_history_days: u32,
    pub name: String,
    pub master_username: String,
    /// Where deploy connects, when not the instance endpoint.
    pub connect_override: Option<(String, u16)>,
    pub tls: DatabaseTls,
    pub ca_bundle: Option<PathBuf>,
    /// Operator networks admitted to PostgreSQL (VPN, Direct Connect).
    pub admin_ingress_cidrs: Vec<Ipv4Net>,
    /// Where the schema step runs (README: "Reaching the database").
    pub schema_runner: SchemaRunner,
}

const DEFAULT_MAINTENANCE_WINDOW: &str = "sun:05:00-sun:06:00";
const DEFAULT_BACKUP_WINDOW: &str = "03:00-04:00";
const DEFAULT_CRON_HISTORY_DAYS: u32 = 7;
/// The PostgreSQL majors poolside supports.
pub const SUPPORTED_MAJORS: std::ops::RangeInclusive<u32> = 14..=17;

/// (host and port deploy connects to instead of the endpoint, TLS, CA bundle)
type Connection = (Option<(String, u16)>, DatabaseTls, Option<PathBuf>);

impl Validator<'_> {
    pub(super) fn check_database(&self, raw: &EnvironmentFile) -> Checked<Database> {
        let d = &raw.database;
        let phase = raw.phase;
        let (engine_version, engine_major) = self.check_engine_version(d)?;
        let (instance_class, allocated_storage_gb, backup_retention_days) =
            self.check_sizing(raw)?;
        let (maintenance_window, backup_window) = self.check_windows(d)?;
        let (name, master_username) = self.check_names(d)?;
        let (connect_override, tls, ca_bundle) = self.check_connection(raw)?;
        let admin_ingress_cidrs = self.check_admin_ingress(d)?;
        let schema_runner = self.check_schema_runner(
            raw,
            connect_override.is_some(),
            !admin_ingress_cidrs.is_empty(),
        )?;
        Ok(Database {
            schema_runner,
            admin_ingress_cidrs,
            engine_version,
            engine_major,
            instance_class,
            allocated_storage_gb,
            multi_az: d.multi_az.unwrap_or(phase != Phase::Pilot),
            backup_retention_days,
            maintenance_window,
            backup_window,
            deletion_protection: d.deletion_protection.unwrap_or(phase != Phase::Pilot),
            snapshot_before_changes: d.snapshot_before_changes.unwrap_or(phase == Phase::Full),
            cron_history_days: self.check_cron_history(d)?,
            name,
            master_username,
            connect_override,
            tls,
            ca_bundle,
        })
    }

    /// A major version (14 to 17), or a minor of one.
    fn check_engine_version(&self, d: &DatabaseSection) -> Checked<(String, u32)> {
        // A major version: RDS retires minors (16.4 can no longer be created),
        // so the newest minor is chosen when the instance is created.
        let engine_version = d.engine_version.clone().unwrap_or_else(|| "16".into());
        let engine_major = engine_version
            .split('.')
            .next()
            .and_then(|major| major.parse::<u32>().ok())
            .filter(|major| SUPPORTED_MAJORS.contains(major))
            .filter(|_| {
                engine_version
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '.')
            });
        let Some(engine_major) = engine_major else {
            return self.fail(
                "database.engine_version",
                format!("{engine_version:?} is not a PostgreSQL version poolside supports (14 to 17: a major version such as \"16\", which creates the newest minor RDS offers, or a minor such as \"16.9\")"),
            );
        };
        Ok((engine_version, engine_major))
    }

    /// The maintenance and backup windows. The same defaults in every phase
    /// (Sunday early morning UTC, the backup just before), so that a deploy
    /// never leaves them to RDS's random choice.
    fn check_windows(&self, d: &DatabaseSection) -> Checked<(String, String)> {
        let maintenance = d
            .maintenance_window
            .as_deref()
            .unwrap_or(DEFAULT_MAINTENANCE_WINDOW);
        let (maintenance, span) = match super::windows::maintenance(maintenance) {
            Ok(window) => window,
            Err(why) => return self.fail("database.maintenance_window", why),
        };
        let backup = d.backup_window.as_deref().unwrap_or(DEFAULT_BACKUP_WINDOW);
        match super::windows::backup(backup, &span) {
            Ok(backup) => Ok((maintenance, backup)),
            // The file sets no backup window: the maintenance window is at fault.
            Err(why) if d.backup_window.is_none() => self.fail(
                "database.maintenance_window",
                format!("{maintenance:?} takes in the default backup window ({why}); move it, or set database.backup_window"),
            ),
            Err(why) => self.fail("database.backup_window", why),
        }
    }

    fn check_cron_history(&self, d: &DatabaseSection) -> Checked<u32> {
        match d.cron_history_days.unwrap_or(DEFAULT_CRON_HISTORY_DAYS) {
            0 => self.fail(
                "database.cron_history_days",
                "0 would delete each run's record as it ends, and with it the job health status and promote read: keep at least 1 day",
            ),
            days @ 1..=366 => Ok(days),
            days => self.fail(
                "database.cron_history_days",
                format!("{days} days is more than a year: pg_cron's history is for recent health, not an archive (at most 366)"),
            ),
        }
    }

    /// The instance class, its storage and its backups: (class, GB, days).
    fn check_sizing(&self, raw: &EnvironmentFile) -> Checked<(String, u32, u32)> {
        let d = &raw.database;
        let phase = raw.phase;
        let instance_class = d.instance_class.clone().unwrap_or_else(|| {
            match phase {
                Phase::Pilot => "db.t4g.medium",
                Phase::Limited => "db.r6g.large",
                Phase::Full => "db.r6g.xlarge",
            }
            .into()
        });
        if !instance_class.starts_with("db.") || instance_class.split('.').count() != 3 {
            return self.fail(
                "database.instance_class",
                format!(
                    "{instance_class:?} is not an RDS instance class such as \"db.t4g.medium\""
                ),
            );
        }
        let allocated_storage_gb = d.allocated_storage_gb.unwrap_or(match phase {
            Phase::Pilot => 20,
            Phase::Limited => 100,
            Phase::Full => 200,
        });
        if !(20..=65536).contains(&allocated_storage_gb) {
            return self.fail(
                "database.allocated_storage_gb",
                format!("{allocated_storage_gb} must be between 20 and 65536 (gp3 limits)"),
            );
        }
        let backup_retention_days = d.backup_retention_days.unwrap_or(match phase {
            Phase::Pilot => 7,
            Phase::Limited => 14,
            Phase::Full => 30,
        });
        if backup_retention_days > 35 {
            return self.fail(
                "database.backup_retention_days",
                format!("{backup_retention_days} is more than RDS allows (35 days)"),
            );
        }
        if backup_retention_days == 0 && phase != Phase::Pilot {
            return self.fail(
                "database.backup_retention_days",
                "0 turns backups off; only the pilot phase may run without them",
            );
        }
        Ok((instance_class, allocated_storage_gb, backup_retention_days))
    }

    /// The database's name and the master user's: (name, master username).
    fn check_names(&self, d: &DatabaseSection) -> Checked<(String, String)> {
        let name = d.name.clone().unwrap_or_else(|| "poolside".into());
        self.check_identifier(
            "database.name",
            &name,
            &["postgres", "template0", "template1", "rdsadmin"],
        )?;
        let master_username = d
            .master_username
            .clone()
            .unwrap_or_else(|| "poolside_admin".into());
        self.check_identifier(
            "database.master_username",
            &master_username,
            &[
                "postgres",
                "rdsadmin",
                "admin",
                "authenticator",
                "web_anon",
                "api_user",
            ],
        )?;
        Ok((name, master_username))
    }

    /// Where deploy connects, with which TLS, trusting which bundle.
    fn check_connection(&self, raw: &EnvironmentFile) -> Checked<Connection> {
        let d = &raw.database;
        let connect_override = match (&d.connect_host, d.connect_port) {
            (Some(host), Some(port)) if !host.is_empty() && port != 0 => Some((host.clone(), port)),
            (None, None) => None,
            (Some(_), None) => {
                return self.fail(
                    "database.connect_host",
                    "needs database.connect_port as well",
                )
            }
            (None, Some(_)) => {
                return self.fail(
                    "database.connect_port",
                    "needs database.connect_host as well",
                )
            }
            (Some(_), Some(_)) => {
                return self.fail(
                    "database.connect_port",
                    "must be a host name and a port between 1 and 65535",
                )
            }
        };
        let tls = d.tls.unwrap_or(DatabaseTls::VerifyFull);
        if tls == DatabaseTls::Disable && raw.target.endpoint_url.is_none() {
            return self.fail(
                "database.tls",
                "\"disable\" is only allowed with target.endpoint_url (an emulator): the RDS parameter group forces TLS",
            );
        }
        let ca_bundle = d.ca_bundle.as_ref().map(|path| {
            let path = PathBuf::from(path);
            match self.source.directory() {
                Some(dir) if path.is_relative() => dir.join(path),
                _ => path,
            }
        });
        if let (Some(path), Some(text)) = (&ca_bundle, &d.ca_bundle) {
            if tls == DatabaseTls::VerifyFull && !path.is_file() {
                return self.fail(
                    "database.ca_bundle",
                    format!("{text:?} is not a file (resolved to {})", path.display()),
                );
            }
        }
        Ok((connect_override, tls, ca_bundle))
    }

    /// Operator networks admitted to PostgreSQL: at most a /8 each, once.
    fn check_admin_ingress(&self, d: &DatabaseSection) -> Checked<Vec<Ipv4Net>> {
        let mut admin_ingress_cidrs = Vec::new();
        for (i, text) in d.admin_ingress_cidrs.iter().enumerate() {
            let path = format!("database.admin_ingress_cidrs[{i}]");
            let net = self.cidr(&path, text)?;
            if net.prefix_len() < 8 {
                return self.fail(
                    &path,
                    format!("{net} would open the database to a large part of the internet: name the VPN or Direct Connect network (at most a /8)"),
                );
            }
            if admin_ingress_cidrs.contains(&net) {
                return self.fail(&path, format!("{net} is listed twice"));
            }
            admin_ingress_cidrs.push(net);
        }
        Ok(admin_ingress_cidrs)
    }

    /// Where the schema step runs: inside the VPC on AWS, unless this machine
    /// has a way in (an emulator, a tunnel, an operator network).
    fn check_schema_runner(
        &self,
        raw: &EnvironmentFile,
        connect_override: bool,
        admin_ingress: bool,
    ) -> Checked<SchemaRunner> {
        let d = &raw.database;
        let emulator = raw.target.endpoint_url.is_some();
        // An emulator that runs tasks stands in for AWS's ECS; connect_host
        // then says where the local PostgREST finds the stand-in database.
        let runs_tasks = raw.target.emulator_runs_tasks;
        let schema_runner = match d.schema_runner {
            Some(runner) => runner,
            None if emulator || connect_override || admin_ingress => SchemaRunner::DeployHost,
            None => SchemaRunner::EcsTask,
        };
        if schema_runner == SchemaRunner::EcsTask {
            if emulator && !runs_tasks {
                return self.fail(
                    "database.schema_runner",
                    "\"ecs-task\" needs real AWS: the emulator runs no tasks. Use \"deploy-host\" (the local PostgreSQL is reachable from here)",
                );
            }
            if d.ca_bundle.is_some() {
                return self.fail(
                    "database.ca_bundle",
                    "is read on this machine, but with database.schema_runner = \"ecs-task\" the schema step runs in a task that trusts the bundle in its image (`poolside image push` adds it): remove the key, or set schema_runner = \"deploy-host\"",
                );
            }
            if connect_override && !runs_tasks {
                return self.fail(
                    "database.connect_host",
                    "is where this machine connects, but with database.schema_runner = \"ecs-task\" a task inside the VPC runs the schema step: remove connect_host/connect_port, or set schema_runner = \"deploy-host\"",
                );
            }
        }
        Ok(schema_runner)
    }

    /// PostgreSQL names poolside creates or connects to: lower case, so they need no quoting.
    fn check_identifier(&self, path: &str, name: &str, reserved: &[&str]) -> Checked<()> {
        let valid = (1..=63).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return self.fail(
                path,
                format!(
                    "{name:?} must be 1-63 characters of a-z, 0-9 and '_', starting with a letter"
                ),
            );
        }
        if reserved.contains(&name) {
            return self.fail(
                path,
                format!("{name:?} is reserved (by PostgreSQL, RDS or poolside's own roles)"),
            );
        }
        Ok(())
    }
}
