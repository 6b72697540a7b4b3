//! The privilege matrix of the `api` and `platform` schemas: who may do what
//! to each schema, table, view, sequence and function.
//!
//! The migrations grant it; nothing else should. Deploy records the matrix
//! as the migrations left it (`platform.poolside_privileges`, taken again
//! whenever a migration is applied), so a `GRANT` or `REVOKE` made by hand
//! later is drift: `drift` names it and the next deploy puts the recorded
//! matrix back.

use serde::Serialize;
use sqlx::{PgConnection, Row};
use std::collections::BTreeSet;

/// One privilege of one grantee on one object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Grant {
    /// `TABLE api.messages`, `SEQUENCE ...`, `FUNCTION api.hello()`, `SCHEMA api`.
    pub object: String,
    /// A role name, or `PUBLIC`.
    pub grantee: String,
    pub privilege: String,
}

/// The privileges as they are now, from the catalogs' ACLs: one row each of
/// `object`, `grantee` and `privilege` (the schema task's script uses it too).
pub const CURRENT: &str = r#"WITH objects AS (
             SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END
                      || quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS object,
                    c.relacl AS acl
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname IN ('api', 'platform') AND c.relkind IN ('r', 'v', 'm', 'S', 'f', 'p')
           UNION ALL
             SELECT 'FUNCTION ' || p.oid::regprocedure::text, p.proacl
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname IN ('api', 'platform')
           UNION ALL
             SELECT 'SCHEMA ' || quote_ident(n.nspname), n.nspacl
             FROM pg_namespace n WHERE n.nspname IN ('api', 'platform')
           )
           SELECT o.object,
                  CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END AS grantee,
                  a.privilege_type AS privilege
           FROM objects o, aclexplode(o.acl) a
           WHERE o.acl IS NOT NULL"#;

/// The privileges as they are now, from the catalogs' ACLs.
pub async fn current(conn: &mut PgConnection) -> Result<BTreeSet<Grant>, sqlx::Error> {
    let rows = sqlx::query(CURRENT).fetch_all(conn).await?;
    Ok(rows
        .into_iter()
        .map(|row| Grant {
            object: row.get("object"),
            grantee: row.get("grantee"),
            privilege: row.get("privilege"),
        })
        .collect())
}

pub const RECORD: &str = "platform.poolside_privileges";

/// The matrix recorded after the last migration; `None` before the first record.
pub async fn recorded(conn: &mut PgConnection) -> Result<Option<BTreeSet<Grant>>, sqlx::Error> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(RECORD)
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(None);
    }
    let rows = sqlx::query(&format!("SELECT object, grantee, privilege FROM {RECORD}"))
        .fetch_all(&mut *conn)
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        rows.into_iter()
            .map(|row| Grant {
                object: row.get("object"),
                grantee: row.get("grantee"),
                privilege: row.get("privilege"),
            })
            .collect(),
    ))
}

/// Records the matrix as it is now (after migrations), in one transaction.
pub async fn record(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query(&format!(
        "CREATE TABLE IF NOT EXISTS {RECORD} (object text NOT NULL, grantee text NOT NULL, privilege text NOT NULL)"
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!("DELETE FROM {RECORD}"))
        .execute(&mut *tx)
        .await?;
    // Read after the table exists: its own privileges are part of the matrix.
    let now = current(&mut tx).await?;
    for grant in &now {
        sqlx::query(&format!(
            "INSERT INTO {RECORD} (object, grantee, privilege) VALUES ($1, $2, $3)"
        ))
        .bind(&grant.object)
        .bind(&grant.grantee)
        .bind(&grant.privilege)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// The differences: granted by hand (extra) and revoked by hand (missing).
pub fn compare(recorded: &BTreeSet<Grant>, current: &BTreeSet<Grant>) -> (Vec<Grant>, Vec<Grant>) {
    (
        current.difference(recorded).cloned().collect(),
        recorded.difference(current).cloned().collect(),
    )
}

/// Puts the recorded matrix back: revokes what was granted by hand and
/// grants what was revoked. Returns the statements it ran.
pub async fn restore(
    conn: &mut PgConnection,
    extra: &[Grant],
    missing: &[Grant],
) -> Result<Vec<String>, sqlx::Error> {
    let mut done = Vec::new();
    // The object and grantee texts come from the catalogs, already quoted.
    for g in extra {
        done.push(format!(
            "REVOKE {} ON {} FROM {}",
            g.privilege, g.object, g.grantee
        ));
    }
    for g in missing {
        done.push(format!(
            "GRANT {} ON {} TO {}",
            g.privilege, g.object, g.grantee
        ));
    }
    for statement in &done {
        sqlx::query(statement).execute(&mut *conn).await?;
    }
    Ok(done)
}
