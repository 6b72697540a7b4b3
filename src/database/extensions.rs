//! pgvector and pg_cron kept at the version the server ships. After an
//! upgrade of the engine (a major one above all), the extensions stay at
//! the version they were created with until `ALTER EXTENSION ... UPDATE`:
//! plan shows each one behind, and deploy updates it.

use serde::Serialize;
use sqlx::PgConnection;

/// The extensions poolside installs and keeps current.
pub const KEPT_CURRENT: [&str; 2] = ["vector", "pg_cron"];

/// An installed extension older than the one the server offers.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outdated {
    pub name: String,
    pub installed: String,
    /// The server's default version (`pg_available_extensions`).
    pub available: String,
}

impl std::fmt::Display for Outdated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} -> {}", self.name, self.installed, self.available)
    }
}

/// Of [`KEPT_CURRENT`], those installed in the connected database at
/// another version than the server's default.
pub async fn outdated(conn: &mut PgConnection) -> Result<Vec<Outdated>, sqlx::Error> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT e.extname::text, e.extversion, a.default_version
           FROM pg_extension e JOIN pg_available_extensions a ON a.name = e.extname
          WHERE e.extname = ANY($1) AND a.default_version IS NOT NULL
            AND e.extversion <> a.default_version
            -- Only forward: an installed version newer than the default has no path.
            AND EXISTS (SELECT FROM pg_extension_update_paths(e.extname) p
                         WHERE p.source = e.extversion AND p.target = a.default_version
                           AND p.path IS NOT NULL)
          ORDER BY 1",
    )
    .bind(KEPT_CURRENT)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, installed, available)| Outdated {
            name,
            installed,
            available,
        })
        .collect())
}

/// Brings each of `outdated` to the server's default version.
pub async fn update(conn: &mut PgConnection, outdated: &[Outdated]) -> Result<(), sqlx::Error> {
    for extension in outdated {
        // The name is one of KEPT_CURRENT: DDL takes no bind parameters.
        sqlx::query(&format!("ALTER EXTENSION \"{}\" UPDATE", extension.name))
            .execute(&mut *conn)
            .await?;
        tracing::info!(%extension, "extension updated");
    }
    Ok(())
}
