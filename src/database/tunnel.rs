//! TLS to RDS through a tunnel, with the server's name still verified.
//!
//! A tunnel (an SSM port forward, an SSH forward) ends on 127.0.0.1, but the
//! RDS certificate names the instance (`<id>.<hash>.<region>.rds.amazonaws.com`),
//! so `verify-full` to 127.0.0.1 fails, and `verify-ca` would accept any RDS
//! instance of any account. libpq's answer is `hostaddr`; sqlx has none, but
//! it checks the certificate against `host` also when it dials a Unix socket.
//! So deploy listens on a private Unix socket and relays each connection to
//! the tunnel, and sqlx verifies the certificate against the instance's name.

use std::path::{Path, PathBuf};
use tokio::net::{TcpStream, UnixListener};
use tokio::task::JoinHandle;

/// A relay from a Unix socket to the tunnel's local end; stops on drop.
pub struct TunnelRelay {
    directory: PathBuf,
    task: JoinHandle<()>,
}

impl TunnelRelay {
    /// Listens where sqlx looks for PostgreSQL's socket of `port` in the
    /// relay's directory (`<dir>/.s.PGSQL.<port>`).
    pub fn start(tunnel_host: &str, tunnel_port: u16, port: u16) -> std::io::Result<TunnelRelay> {
        let directory = std::env::temp_dir().join(format!(
            "poolside-tunnel-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir(&directory)?;
        // Only this user may use the relay: it leads to the database.
        std::fs::set_permissions(
            &directory,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        let listener = UnixListener::bind(directory.join(format!(".s.PGSQL.{port}")))?;
        let target = format!("{tunnel_host}:{tunnel_port}");
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                tokio::spawn(async move {
                    match TcpStream::connect(&target).await {
                        Ok(mut server) => {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                        Err(err) => tracing::info!(%err, target, "the tunnel does not answer"),
                    }
                });
            }
        });
        Ok(TunnelRelay { directory, task })
    }

    /// The directory to give sqlx as `socket`.
    pub fn directory(&self) -> &Path {
        &self.directory
    }
}

impl Drop for TunnelRelay {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}
