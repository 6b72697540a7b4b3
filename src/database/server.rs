//! Where deploy reaches PostgreSQL and how: the instance endpoint, a
//! tunnel with or without TLS, the RDS certificate authorities, and the
//! errors that say what to check when nothing answers.

use super::{migrations, tunnel};
use crate::config::{Config, DatabaseTls};
use anyhow::{anyhow, Context as _};
use serde::Deserialize;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{ConnectOptions, PgConnection};
use std::time::Duration;

/// A database login as Secrets Manager stores it (the RDS-managed secret and ours).
#[derive(Deserialize)]
pub struct Login {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Login {{ username: {:?}, password: <hidden> }}",
            self.username
        )
    }
}

/// The RDS certificate authorities (`certs/README.md`): the default for
/// `verify-full`, so a first deploy needs no download.
pub const RDS_CA_BUNDLE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/certs/rds-ca-bundle.pem"
));

/// How long one connection attempt may take before deploy says why it
/// cannot reach the server, instead of stalling on a dropped SYN for minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to reach the server: the instance endpoint, or a tunnel.
pub(super) struct Server {
    /// The name the server's certificate must carry: the instance's address.
    host: String,
    port: u16,
    tls: DatabaseTls,
    ca_bundle: Option<std::path::PathBuf>,
    /// Set when deploy goes through `database.connect_host/connect_port`.
    route: Route,
}

enum Route {
    /// Straight to `host:port` (inside the VPC, a VPN, Direct Connect).
    Direct,
    /// Through a tunnel, without TLS: the emulator's stand-in PostgreSQL.
    Plain { host: String, port: u16 },
    /// Through a tunnel, with TLS verified against the instance's name.
    Relayed {
        tunnel: String,
        relay: tunnel::TunnelRelay,
    },
}

impl Server {
    pub(super) fn new(config: &Config, address: String, port: u16) -> anyhow::Result<Server> {
        let tls = config.database.tls;
        let route = match (&config.database.connect_override, tls) {
            (None, _) => Route::Direct,
            (Some((host, port)), DatabaseTls::Disable) => Route::Plain {
                host: host.clone(),
                port: *port,
            },
            (Some((tunnel_host, tunnel_port)), DatabaseTls::VerifyFull) => Route::Relayed {
                tunnel: format!("{tunnel_host}:{tunnel_port}"),
                relay: tunnel::TunnelRelay::start(tunnel_host, *tunnel_port, port)
                    .context("starting the local relay to database.connect_host")?,
            },
        };
        Ok(Server {
            host: address,
            port,
            tls,
            ca_bundle: config.database.ca_bundle.clone(),
            route,
        })
    }

    /// What the report and errors call the place deploy connects to.
    pub(super) fn describe(&self) -> String {
        match &self.route {
            Route::Direct => format!("{}:{}", self.host, self.port),
            Route::Plain { host, port } => format!("{host}:{port}"),
            Route::Relayed { tunnel, .. } => {
                format!("{}:{} through the tunnel at {tunnel}", self.host, self.port)
            }
        }
    }

    fn options(&self, login: &Login, database: &str) -> PgConnectOptions {
        let mut options = PgConnectOptions::new()
            .username(&login.username)
            .password(&login.password)
            .database(database)
            .application_name("poolside-deploy");
        options = match &self.route {
            Route::Direct => options.host(&self.host).port(self.port),
            Route::Plain { host, port } => options.host(host).port(*port),
            // sqlx dials the socket and checks the certificate against `host`.
            Route::Relayed { relay, .. } => options
                .socket(relay.directory())
                .host(&self.host)
                .port(self.port),
        };
        options = match self.tls {
            DatabaseTls::Disable => options.ssl_mode(PgSslMode::Disable),
            DatabaseTls::VerifyFull => {
                let options = options.ssl_mode(PgSslMode::VerifyFull);
                match &self.ca_bundle {
                    Some(path) => options.ssl_root_cert(path),
                    None => options.ssl_root_cert_from_pem(RDS_CA_BUNDLE.to_vec()),
                }
            }
        };
        options
    }

    pub(super) async fn try_connect(
        &self,
        login: &Login,
        database: &str,
    ) -> Result<PgConnection, Unreached> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.options(login, database).connect()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(err)) => Err(Unreached::Refused(err)),
            Err(_) => Err(Unreached::Silent),
        }
    }

    pub(super) async fn connect(
        &self,
        login: &Login,
        database: &str,
    ) -> anyhow::Result<PgConnection> {
        // A new instance's DNS name can lag its `available` state by a little.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_connect(login, database).await {
                Ok(conn) => return Ok(conn),
                Err(Unreached::Refused(sqlx::Error::Io(err)))
                    if attempt < 5 && !is_certificate_error(&err) =>
                {
                    tracing::info!(%err, attempt, "database not reachable yet; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Err(unreached) => {
                    return Err(anyhow!(
                        "cannot connect to PostgreSQL at {} (database {database}, user {}): {}{}",
                        self.describe(),
                        login.username,
                        unreached.cause(),
                        self.hint(&unreached)
                    ))
                }
            }
        }
    }

    /// What to do about a connection that failed, for the error message.
    fn hint(&self, unreached: &Unreached) -> &'static str {
        const REACH: &str =
            "\n  The instance is private. Deploy must reach it from inside the VPC: \
            over a VPN or Direct Connect (list that network in database.admin_ingress_cidrs), \
            or through a tunnel whose local end is database.connect_host/connect_port \
            (an SSM port forward, say); TLS is still verified against the instance's name. \
            README: \"Reaching the database\".";
        let certificate = match unreached {
            Unreached::Refused(sqlx::Error::Tls(_)) => true,
            Unreached::Refused(sqlx::Error::Io(err)) => is_certificate_error(err),
            _ => false,
        };
        match (unreached, &self.route) {
            _ if certificate && self.ca_bundle.is_none() => {
                "\n  The server's certificate is not signed by an RDS certificate authority poolside knows (certs/rds-ca-bundle.pem): through a tunnel, make sure it leads to the instance; if AWS has issued a newer CA, set database.ca_bundle to AWS's current global bundle (https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem)."
            }
            _ if certificate => {
                "\n  The server's certificate must name the instance and be signed by a CA in database.ca_bundle. Through a tunnel, make sure it leads to this environment's instance."
            }
            (Unreached::Silent | Unreached::Refused(sqlx::Error::Io(_)), Route::Direct) => REACH,
            (Unreached::Silent | Unreached::Refused(sqlx::Error::Io(_)), _) => {
                "\n  Nothing answers through database.connect_host/connect_port: is the tunnel open, and does it lead to the instance's address and port?"
            }
            _ => "",
        }
    }
}

/// rustls refuses a certificate as an I/O error of the TLS stream.
fn is_certificate_error(err: &std::io::Error) -> bool {
    err.to_string().contains("certificate")
}

/// Why a connection attempt failed.
pub(super) enum Unreached {
    /// The server or the network said no.
    Refused(sqlx::Error),
    /// Nothing answered within [`CONNECT_TIMEOUT`]: a security group or
    /// route that drops packets, typically.
    Silent,
}

impl Unreached {
    pub(super) fn cause(&self) -> String {
        match self {
            Unreached::Refused(err) => migrations::database_message(err),
            Unreached::Silent => format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()),
        }
    }
}

/// How hard to try a connection: once (a plan must not stall) or with
/// deploy's retries.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Patience {
    Once,
    Retry,
}

#[cfg(test)]
mod tests {
    use super::RDS_CA_BUNDLE;
    use base64::Engine as _;

    /// The certificates of the embedded bundle, as DER.
    fn certificates() -> Vec<Vec<u8>> {
        let text = std::str::from_utf8(RDS_CA_BUNDLE).unwrap();
        text.split("-----BEGIN CERTIFICATE-----")
            .skip(1)
            .map(|block| {
                let body: String = block
                    .split("-----END CERTIFICATE-----")
                    .next()
                    .unwrap()
                    .split_whitespace()
                    .collect();
                base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .expect("each certificate is base64")
            })
            .collect()
    }

    #[test]
    fn the_embedded_rds_bundle_holds_every_regions_roots() {
        let all = certificates();
        assert!(all.len() >= 100, "{} certificates", all.len());
        let has = |name: &str| {
            all.iter()
                .any(|der| der.windows(name.len()).any(|w| w == name.as_bytes()))
        };
        for region in [
            "us-east-1",
            "eu-west-1",
            "eu-central-1",
            "ap-southeast-2",
            "sa-east-1",
        ] {
            for kind in ["RSA2048 G1", "RSA4096 G1", "ECC384 G1"] {
                let name = format!("Amazon RDS {region} Root CA {kind}");
                assert!(has(&name), "no {name}");
            }
        }
    }
}
