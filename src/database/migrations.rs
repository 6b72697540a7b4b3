//! The schema migrations, applied with sqlx's migrator primitives: the ledger
//! table (`_sqlx_migrations`: version, description, checksum, installed_on,
//! execution_time), a session advisory lock so two deploys cannot migrate at
//! once, and each migration with its ledger row in one transaction, so a
//! failing migration leaves neither its changes nor a ledger row behind.

use super::lint;
use serde::Serialize;
use sqlx::migrate::{Migrate, MigrateError, Migration, MigrationType};
use sqlx::PgConnection;
use std::borrow::Cow;
use std::collections::BTreeMap;

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// One migration as shipped: where it came from, for error messages.
pub struct Shipped {
    pub migration: Migration,
    pub file: String,
}

/// The migrations embedded in this build. One marked
/// [`lint::NO_TRANSACTION_MARKER`] runs outside a transaction.
pub fn shipped() -> Vec<Shipped> {
    MIGRATIONS
        .iter()
        .map(|(version, description, file, sql)| Shipped {
            migration: Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                Cow::Borrowed(*sql),
                runs_outside_a_transaction(sql),
            ),
            file: format!("sql/migrations/{file}"),
        })
        .collect()
}

fn runs_outside_a_transaction(sql: &str) -> bool {
    sql.lines()
        .any(|line| line.trim() == lint::NO_TRANSACTION_MARKER)
}

/// The migrations up to this version ran on empty tables when they were
/// first shipped and are not linted; every later one is.
const LINTED_FROM: i64 = 6;

/// What the shipped migrations do that they must not ([`lint`]), each
/// checked against the tables the migrations before it created.
pub fn lint_shipped(shipped: &[Shipped]) -> Vec<lint::Finding> {
    let mut existing = std::collections::BTreeSet::new();
    let mut found = Vec::new();
    for s in shipped {
        if s.migration.version >= LINTED_FROM {
            found.extend(lint::lint(&s.file, &s.migration.sql, &existing));
        }
        existing.extend(lint::tables_created(&s.migration.sql));
    }
    found
}

/// Refuses to start the schema step when a migration breaks a lint rule,
/// naming each file, line and rule.
pub fn refuse_unsafe(shipped: &[Shipped]) -> Result<(), MigrationError> {
    let found = lint_shipped(shipped);
    if found.is_empty() {
        return Ok(());
    }
    Err(MigrationError::Unsafe {
        findings: found
            .iter()
            .map(|f| format!("\n  - {f}"))
            .collect::<String>(),
    })
}

pub use lint::CONTRACT_MARKER;

impl Shipped {
    pub fn contracts(&self) -> bool {
        self.migration
            .sql
            .lines()
            .any(|line| line.trim() == CONTRACT_MARKER)
    }
}

/// The pending migrations (by file) that are marked as contracting.
pub fn contracting_pending(pending: &[String], shipped: &[Shipped]) -> Vec<String> {
    shipped
        .iter()
        .filter(|s| pending.contains(&s.file) && s.contracts())
        .map(|s| s.file.clone())
        .collect()
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Applied {
    pub version: i64,
    pub file: String,
    pub elapsed_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("{file} was changed after it was applied to this database (its checksum differs from the ledger's). Applied migrations are history: undo the edit and put the change in a new migration")]
    Changed { file: String },
    #[error("{file} failed and was rolled back (the database and the ledger are as they were): {message}")]
    Failed { file: String, message: String },
    #[error("this database has migration {version} applied, which this build of poolside does not have: was it migrated by a newer poolside?")]
    Unknown { version: i64 },
    #[error("migration {version} is marked as failed in the ledger (_sqlx_migrations); repair it by hand")]
    Dirty { version: i64 },
    #[error(
        "refusing to migrate: a migration breaks the lint rules (nothing was applied):{findings}"
    )]
    Unsafe { findings: String },
    #[error("migrating the database: {0}")]
    Database(#[from] MigrateError),
}

/// Applies the migrations the database does not have yet, in order, and
/// returns what it applied. Refuses to start if an applied one has changed.
pub async fn migrate(
    conn: &mut PgConnection,
    migrations: &[Shipped],
) -> Result<Vec<Applied>, MigrationError> {
    refuse_unsafe(migrations)?;
    conn.lock().await?;
    let result = migrate_locked(conn, migrations).await;
    // On error the connection is dropped by the caller, which frees the lock too.
    if result.is_ok() {
        conn.unlock().await?;
    }
    result
}

async fn migrate_locked(
    conn: &mut PgConnection,
    migrations: &[Shipped],
) -> Result<Vec<Applied>, MigrationError> {
    conn.ensure_migrations_table().await?;
    if let Some(version) = conn.dirty_version().await? {
        return Err(MigrationError::Dirty { version });
    }
    let applied: BTreeMap<i64, Vec<u8>> = conn
        .list_applied_migrations()
        .await?
        .into_iter()
        .map(|m| (m.version, m.checksum.into_owned()))
        .collect();
    let by_version: BTreeMap<i64, &Shipped> = migrations
        .iter()
        .map(|s| (s.migration.version, s))
        .collect();
    if let Some(version) = applied.keys().find(|v| !by_version.contains_key(v)) {
        return Err(MigrationError::Unknown { version: *version });
    }
    // Check every applied one before applying anything new.
    for (version, checksum) in &applied {
        let shipped = by_version[version];
        if shipped.migration.checksum.as_ref() != checksum.as_slice() {
            return Err(MigrationError::Changed {
                file: shipped.file.clone(),
            });
        }
    }
    let mut done = Vec::new();
    for shipped in migrations {
        if applied.contains_key(&shipped.migration.version) {
            continue;
        }
        tracing::info!(file = %shipped.file, "applying migration");
        let elapsed = conn
            .apply(&shipped.migration)
            .await
            .map_err(|err| match err {
                MigrateError::ExecuteMigration(source, _) => MigrationError::Failed {
                    file: shipped.file.clone(),
                    message: database_message(&source),
                },
                other => MigrationError::Database(other),
            })?;
        done.push(Applied {
            version: shipped.migration.version,
            file: shipped.file.clone(),
            elapsed_ms: elapsed.as_millis() as u64,
        });
    }
    Ok(done)
}

/// How the ledger compares with what this build ships, read-only.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Status {
    /// Shipped and not applied: the next deploy applies them.
    pub pending: Vec<String>,
    /// Applied, and changed in `sql/` since.
    pub changed: Vec<String>,
    /// Applied, and not shipped by this build.
    pub unknown: Vec<i64>,
    /// Marked failed in the ledger.
    pub failed: Vec<i64>,
    /// The newest applied version: the schema version.
    pub applied_version: Option<i64>,
}

pub async fn status(
    conn: &mut PgConnection,
    migrations: &[Shipped],
) -> Result<Status, sqlx::Error> {
    use sqlx::Row as _;
    let has_ledger: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    let rows = if has_ledger {
        sqlx::query("SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut *conn)
            .await?
    } else {
        vec![]
    };
    let mut status = Status::default();
    let mut applied = BTreeMap::new();
    for row in rows {
        let version: i64 = row.get("version");
        let checksum: Vec<u8> = row.get("checksum");
        let success: bool = row.get("success");
        if !success {
            status.failed.push(version);
        }
        applied.insert(version, checksum);
    }
    status.applied_version = applied.keys().next_back().copied();
    for shipped in migrations {
        match applied.get(&shipped.migration.version) {
            None => status.pending.push(shipped.file.clone()),
            Some(checksum) if checksum.as_slice() != shipped.migration.checksum.as_ref() => {
                status.changed.push(shipped.file.clone())
            }
            Some(_) => {}
        }
    }
    status.unknown = applied
        .keys()
        .filter(|v| !migrations.iter().any(|s| s.migration.version == **v))
        .copied()
        .collect();
    Ok(status)
}

/// The server's own words, with its position hint when it gives one.
pub fn database_message(err: &sqlx::Error) -> String {
    match err.as_database_error() {
        Some(db) => {
            let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
            let mut text = db.message().to_string();
            if let Some(pg) = pg {
                if let Some(detail) = pg.detail() {
                    text.push_str(&format!(" ({detail})"));
                }
                if let Some(where_) = pg.r#where() {
                    text.push_str(&format!(" [{}]", where_.replace('\n', "; ")));
                }
                text.push_str(&format!(" (SQLSTATE {})", pg.code()));
            }
            text
        }
        None => err.to_string(),
    }
}

/// What the migrations leave in the `api` schema, which PostgREST serves:
/// functions as `/rpc/<name>`, tables and views as `/<name>`, each with
/// whether a function needs arguments (a parameter without a default). Read
/// from the SQL's `CREATE` and `DROP` statements, in order (unquoted names
/// fold to lower case, as PostgreSQL folds them).
pub fn api_paths(shipped: &[Shipped]) -> BTreeMap<String, bool> {
    let mut paths = BTreeMap::new();
    for migration in shipped {
        let text: String = migration
            .migration
            .sql
            .lines()
            .map(|line| line.split("--").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
            .chars()
            .flat_map(|c| match c {
                '(' | ')' | ',' | ';' => vec![' ', c, ' '],
                c => vec![c],
            })
            .collect();
        let words: Vec<&str> = text.split_whitespace().collect();
        let mut at = 0;
        while at < words.len() {
            let verb = words[at];
            at += 1;
            if verb != "create" && verb != "drop" {
                continue;
            }
            let skip = [
                "or",
                "replace",
                "materialized",
                "unlogged",
                "if",
                "not",
                "exists",
            ];
            let mut kind = None;
            while let Some(word) = words.get(at) {
                match *word {
                    "function" | "table" | "view" if kind.is_none() => kind = Some(*word),
                    w if skip.contains(&w) => {}
                    _ => break,
                }
                at += 1;
            }
            let Some(kind) = kind else { continue };
            // DROP takes a list: api.a, api.b
            while let Some(name) = words.get(at).map(|w| w.replace('"', "")) {
                at += 1;
                if let Some(object) = name.strip_prefix("api.") {
                    let path = if kind == "function" {
                        format!("/rpc/{object}")
                    } else {
                        format!("/{object}")
                    };
                    if verb == "create" {
                        let needs_arguments = kind == "function" && needs_arguments(&words[at..]);
                        paths.insert(path, needs_arguments);
                    } else {
                        paths.remove(&path);
                    }
                }
                if verb == "drop" && words.get(at) == Some(&"(") {
                    let close = words[at..].iter().position(|w| *w == ")");
                    at += close.map_or(words.len(), |c| c + 1);
                }
                if verb == "create" || words.get(at) != Some(&",") {
                    break;
                }
                at += 1;
            }
        }
    }
    paths
}

/// Whether the parameter list at the start of `words` (`( a text, b int
/// default 5 )`) has a parameter without a default.
fn needs_arguments(words: &[&str]) -> bool {
    if words.first() != Some(&"(") {
        return false;
    }
    let mut depth = 0;
    let mut parameter: Vec<&str> = Vec::new();
    let mut any_required = false;
    for word in words {
        match *word {
            "(" => {
                depth += 1;
                if depth == 1 {
                    continue;
                }
            }
            ")" => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            "," if depth == 1 => {
                any_required |= required(&parameter);
                parameter.clear();
                continue;
            }
            _ => {}
        }
        parameter.push(word);
    }
    any_required || required(&parameter)
}

fn required(parameter: &[&str]) -> bool {
    // OUT parameters are results, not arguments.
    !parameter.is_empty()
        && !parameter
            .iter()
            .any(|w| *w == "default" || w.starts_with('='))
        && parameter.first() != Some(&"out")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_paths_are_what_the_migrations_create_and_have_not_dropped() {
        let paths = api_paths(&shipped());
        for (path, needs_arguments) in [
            ("/rpc/hello", false),
            ("/rpc/schedule_training", false),
            ("/rpc/search_documents", true),
            ("/messages", false),
            ("/model_metrics", false),
        ] {
            assert_eq!(
                paths.get(path),
                Some(&needs_arguments),
                "{path} in {paths:?}"
            );
        }
        assert!(paths.keys().all(|p| !p.contains("platform")), "{paths:?}");

        let migration = |sql: &'static str| Shipped {
            migration: Migration::new(
                1,
                Cow::Borrowed("t"),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                false,
            ),
            file: "t.sql".into(),
        };
        let paths = api_paths(&[
            migration(
                "CREATE OR REPLACE FUNCTION api.Ask(q text) RETURNS text; -- create table api.not_this\n\
                 create function api.at(t timestamptz default now(), out n int) returns int;\n\
                 create table if not exists api.\"notes\" (id int); create view api.v as select 1;\n\
                 create function platform.hidden() returns int;",
            ),
            migration("DROP FUNCTION IF EXISTS api.ask(text), api.gone(); drop view api.v;"),
        ]);
        assert_eq!(
            paths.into_iter().collect::<Vec<_>>(),
            [
                ("/notes".to_string(), false),
                ("/rpc/at".to_string(), false)
            ]
        );
    }

    fn numbered(version: i64, file: &str, sql: &'static str) -> Shipped {
        Shipped {
            migration: Migration::new(
                version,
                Cow::Borrowed("t"),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                runs_outside_a_transaction(sql),
            ),
            file: file.into(),
        }
    }

    #[test]
    fn the_shipped_migrations_pass_the_lint() {
        assert_eq!(lint_shipped(&shipped()), []);
    }

    /// A table an earlier migration made exists for the lint; one the same
    /// migration makes does not; migrations before the lint are not read.
    #[test]
    fn a_later_migration_is_linted_against_the_tables_before_it_and_refused_by_name() {
        let list = [
            numbered(2, "sql/migrations/0002_t.sql", "CREATE TABLE api.notes (id int);\nCREATE INDEX a ON api.notes (id);"),
            numbered(6, "sql/migrations/0006_t.sql", "CREATE TABLE api.tags (id int);\nCREATE INDEX b ON api.tags (id);\n\nCREATE INDEX c ON api.notes (id);"),
        ];
        let found: Vec<String> = lint_shipped(&list).iter().map(|f| f.to_string()).collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("sql/migrations/0006_t.sql:4: index-blocks-writes: "),
            "{found:?}"
        );
        let refused = refuse_unsafe(&list).unwrap_err().to_string();
        assert!(
            refused.contains("nothing was applied") && refused.contains("0006_t.sql:4"),
            "{refused}"
        );
    }

    #[test]
    fn a_migration_marked_no_transaction_runs_outside_one() {
        let marked = numbered(
            6,
            "t.sql",
            "-- poolside: no-transaction\nCREATE INDEX CONCURRENTLY c ON api.notes (id);",
        );
        assert!(marked.migration.no_tx);
        assert!(
            !numbered(7, "t.sql", "CREATE TABLE t (id int);")
                .migration
                .no_tx
        );
    }

    #[test]
    fn migrations_are_embedded_in_order_with_distinct_versions() {
        let shipped = shipped();
        assert!(shipped.len() >= 5, "found {}", shipped.len());
        let versions: Vec<i64> = shipped.iter().map(|s| s.migration.version).collect();
        let mut sorted = versions.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(versions, sorted);
        assert!(shipped[0].file.starts_with("sql/migrations/0001_"));
    }
}
