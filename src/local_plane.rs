//! The local data plane. moto runs no containers, so on an emulator target
//! PostgREST runs here as the ECS task would: from the task definition the
//! service runs, with its `secrets` read from Secrets Manager. A wrong
//! variable or secret reference in the task definition breaks the local API
//! the way it would break the service.
//!
//! What differs from ECS, like `docker run -p`: the listen address and ports
//! (`api.local_port` and the next one for the admin server), and the database
//! endpoint and TLS mode, which follow `[database] connect_host/connect_port/tls`
//! because moto's RDS endpoint does not resolve.

use crate::config::{Config, DatabaseTls};
use crate::resources::{ecs, ecs::task_definitions, Context};
use anyhow::{anyhow, bail, Context as _};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How long PostgREST may take to answer `/ready` after a start.
const READY_WITHIN: Duration = Duration::from_secs(30);

#[derive(Debug, serde::Serialize)]
pub struct LocalApi {
    pub url: String,
    pub task_definition: String,
    /// `started`, `restarted` (the task definition or a secret changed) or `unchanged`.
    pub action: &'static str,
    pub pid: u32,
}

struct Paths {
    binary: PathBuf,
    pid: PathBuf,
    fingerprint: PathBuf,
    log: PathBuf,
}

/// Where the local stack scripts install and run things (`localstack/common.sh`).
/// The stack an environment's local PostgREST belongs to: its emulator
/// endpoint as a file name (`127.0.0.1_4566`). Two stacks may each have an
/// environment `local`; their servers never share a pid file.
fn stack_key(config: &Config) -> String {
    let endpoint = config.endpoint_url.as_deref().unwrap_or("aws");
    let endpoint = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest)
        .trim_end_matches('/');
    endpoint
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn paths(config: &Config) -> anyhow::Result<Paths> {
    let home = match std::env::var_os("POOLSIDE_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").ok_or_else(|| anyhow!("HOME is not set"))?)
            .join(".local/share/poolside"),
    };
    let binary = match std::env::var_os("POOLSIDE_POSTGREST") {
        Some(path) => PathBuf::from(path),
        None => home.join("postgrest-12.0.2/postgrest"),
    };
    let run = home.join("run");
    std::fs::create_dir_all(&run).with_context(|| format!("creating {}", run.display()))?;
    let name = format!("postgrest-{}@{}", config.name, stack_key(config));
    Ok(Paths {
        binary,
        pid: run.join(format!("{name}.pid")),
        fingerprint: run.join(format!("{name}.fingerprint")),
        log: run.join(format!("{name}.log")),
    })
}

/// Starts PostgREST for the environment, or restarts it when what it would
/// run with changed; leaves a healthy one with the same configuration alone.
pub async fn ensure_running(cx: &Context, config: &Config) -> anyhow::Result<LocalApi> {
    let cluster = crate::names::cluster_name(config);
    let service = crate::names::service_name(config);
    let (arn, container) = match task_definitions::discovered_api_container(cx) {
        Some(seen) => seen,
        None => {
            let running = ecs::service_counts(cx, &cluster, &service)
                .await?
                .ok_or_else(|| {
                    anyhow!("the ECS service {service} does not exist in cluster {cluster}")
                })?;
            task_definitions::task_definition(cx, &running.task_definition).await?
        }
    };

    let environment = task_environment(cx, config, &arn, &container).await?;
    let api_port = config.api.local_port;
    let paths = paths(config)?;
    if !paths.binary.is_file() {
        bail!(
            "PostgREST is not installed at {} (./localstack/install.sh installs it; POOLSIDE_POSTGREST names another binary)",
            paths.binary.display()
        );
    }
    let fingerprint = fingerprint(&paths.binary, &arn, &environment);
    let admin = format!("http://127.0.0.1:{}", api_port + 1);
    let url = format!("http://127.0.0.1:{api_port}");
    let previous = running_pid(&paths);
    if let Some(pid) = previous {
        let same =
            std::fs::read_to_string(&paths.fingerprint).ok().as_deref() == Some(&fingerprint);
        if same && ready(&admin).await {
            return Ok(LocalApi {
                url,
                task_definition: arn,
                action: "unchanged",
                pid,
            });
        }
    }
    check_ports_free(&paths, previous, api_port)?;
    if let Some(pid) = previous {
        stop_pid(pid).await;
    }
    let mut child = spawn(&paths, &environment)?;
    let pid = child.id();
    std::fs::write(&paths.pid, pid.to_string())?;
    std::fs::write(&paths.fingerprint, &fingerprint)?;
    wait_ready(&paths, &mut child, &admin).await?;
    Ok(LocalApi {
        url,
        task_definition: arn,
        action: if previous.is_some() {
            "restarted"
        } else {
            "started"
        },
        pid,
    })
}

/// The task's environment as ECS would give it (its secrets resolved),
/// pointed at the local ports and the local database.
async fn task_environment(
    cx: &Context,
    config: &Config,
    arn: &str,
    container: &crate::resources::spec::ContainerSpec,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut environment = container.environment.clone();
    for (name, value_from) in &container.secrets {
        let value = resolve_secret(cx, value_from).await.with_context(|| {
            format!("task definition {arn}: the secret {name} (valueFrom {value_from})")
        })?;
        environment.insert(name.clone(), value);
    }
    let api_port = config.api.local_port;
    environment.insert("PGRST_SERVER_HOST".into(), "127.0.0.1".into());
    environment.insert("PGRST_SERVER_PORT".into(), api_port.to_string());
    environment.insert("PGRST_ADMIN_SERVER_PORT".into(), (api_port + 1).to_string());
    if let Some((host, port)) = &config.database.connect_override {
        environment.insert("PGHOST".into(), host.clone());
        environment.insert("PGPORT".into(), port.to_string());
    }
    // The task verifies the instance's certificate with the bundle its image
    // carries; locally the server is reached through connect_host, whose name
    // the certificate does not carry, and the image's file is not here.
    environment.remove("PGSSLROOTCERT");
    match config.database.tls {
        DatabaseTls::Disable => environment.insert("PGSSLMODE".into(), "disable".into()),
        DatabaseTls::VerifyFull => environment.insert("PGSSLMODE".into(), "require".into()),
    };

    Ok(environment)
}

/// Checked before ours is stopped, so a refusal leaves the API up.
/// Whatever answers on a taken port is not this environment's server:
/// refuse rather than report another environment's API as ours.
fn check_ports_free(paths: &Paths, previous: Option<u32>, api_port: u16) -> anyhow::Result<()> {
    for port in [api_port, api_port + 1] {
        let ours = previous.is_some_and(|pid| listens_on(pid, port));
        if !ours && std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            let holder = match port_holder(paths, port) {
                Some(holder) => holder,
                None => "another process".to_string(),
            };
            bail!(
                "port {port} is in use by {holder}: give this environment another api.local_port (its admin server takes the next port); nothing was stopped"
            );
        }
    }
    Ok(())
}

/// ECS's `valueFrom`: a secret ARN, optionally followed by
/// `:json-key:version-stage:version-id`.
async fn resolve_secret(cx: &Context, value_from: &str) -> anyhow::Result<String> {
    let parts: Vec<&str> = value_from.split(':').collect();
    if parts.len() < 7 || parts[2] != "secretsmanager" {
        bail!("not a Secrets Manager ARN");
    }
    let arn = parts[..7].join(":");
    let json_key = parts.get(7).filter(|k| !k.is_empty());
    let value = crate::resources::secrets::read_value(cx, &arn).await?;
    let Some(key) = json_key else {
        return Ok(value);
    };
    let document: serde_json::Value = serde_json::from_str(&value)
        .map_err(|_| anyhow!("the secret is not JSON, so it has no key {key:?}"))?;
    document
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("the secret has no string key {key:?}"))
}

/// A digest of what PostgREST would run with; the secrets go in hashed, never as text.
/// A new task definition revision restarts it, as ECS replaces the tasks.
fn fingerprint(
    binary: &std::path::Path,
    task_definition: &str,
    environment: &BTreeMap<String, String>,
) -> String {
    let mut hash = Sha256::new();
    hash.update(binary.display().to_string());
    hash.update([0]);
    hash.update(task_definition);
    for (k, v) in environment {
        hash.update([0]);
        hash.update(k);
        hash.update([0]);
        hash.update(v);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whose local PostgREST listens on `port`, from the pid files beside ours
/// (every stack's) and the environment each process was started with.
fn port_holder(paths: &Paths, port: u16) -> Option<String> {
    let run = paths.pid.parent()?;
    for entry in std::fs::read_dir(run).ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(key) = name
            .strip_prefix("postgrest-")
            .and_then(|n| n.strip_suffix(".pid"))
        else {
            continue;
        };
        let Some(pid) = std::fs::read_to_string(entry.path())
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
            .filter(|pid| alive(*pid))
        else {
            continue;
        };
        if listens_on(pid, port) {
            return Some(match key.split_once('@') {
                Some((environment, stack)) => format!(
                    "environment `{environment}`'s PostgREST of the stack at {stack} (pid {pid})"
                ),
                None => format!("environment `{key}`'s PostgREST, started by an older poolside (pid {pid}; ./stop.sh stops it)"),
            });
        }
    }
    None
}

/// Whether the PostgREST `pid` was started to listen on `port`.
fn listens_on(pid: u32, port: u16) -> bool {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    environ.split(|b| *b == 0).any(|var| {
        let var = String::from_utf8_lossy(var);
        var == format!("PGRST_SERVER_PORT={port}")
            || var == format!("PGRST_ADMIN_SERVER_PORT={port}")
    })
}

fn alive(pid: u32) -> bool {
    // A zombie or a reused pid is not our server: check what runs there.
    std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| cmdline.contains("postgrest"))
}

fn running_pid(paths: &Paths) -> Option<u32> {
    let pid = std::fs::read_to_string(&paths.pid)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    alive(pid).then_some(pid)
}

/// Stops a PostgREST and returns once it has exited, its ports closed.
/// Each signal goes only to the process that was there at first (a pid
/// freed and reused meanwhile is left alone).
async fn stop_pid(pid: u32) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let started = crate::process::start_time(pid);
    let same = || crate::process::start_time(pid) == started;
    for signal in [Signal::SIGTERM, Signal::SIGKILL] {
        if !same() {
            return;
        }
        let _ = kill(Pid::from_raw(pid as i32), signal);
        for _ in 0..50 {
            if crate::process::exited(pid) || !same() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn spawn(
    paths: &Paths,
    environment: &BTreeMap<String, String>,
) -> anyhow::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&paths.log)
        .with_context(|| format!("opening {}", paths.log.display()))?;
    let child = std::process::Command::new(&paths.binary)
        // Only what the task definition gives, as in a container.
        .env_clear()
        .envs(environment)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: it outlives this deploy and a Ctrl-C of it.
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {}", paths.binary.display()))?;
    Ok(child)
}

async fn ready(admin: &str) -> bool {
    let client = reqwest::Client::new();
    matches!(
        client
            .get(format!("{admin}/ready"))
            .timeout(Duration::from_secs(2))
            .send()
            .await,
        Ok(r) if r.status().is_success()
    )
}

async fn wait_ready(
    paths: &Paths,
    child: &mut std::process::Child,
    admin: &str,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + READY_WITHIN;
    while tokio::time::Instant::now() < deadline {
        // Ours must still run when the port answers: a server that could not
        // bind has exited, and what answers is someone else's.
        if let Some(status) = child.try_wait()? {
            bail!(
                "PostgREST exited at start ({status}); the end of {}:\n{}",
                paths.log.display(),
                log_tail(paths)
            );
        }
        if ready(admin).await && child.try_wait()?.is_none() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!(
        "PostgREST did not become ready within {}s ({admin}/ready); the end of {}:\n{}",
        READY_WITHIN.as_secs(),
        paths.log.display(),
        log_tail(paths)
    )
}

fn log_tail(paths: &Paths) -> String {
    let text = std::fs::read_to_string(&paths.log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// Stops the environment's local PostgREST (this stack's), if it runs.
/// Returns its pid.
pub async fn stop(config: &Config) -> anyhow::Result<Option<u32>> {
    let paths = paths(config)?;
    let pid = running_pid(&paths);
    if let Some(pid) = pid {
        stop_pid(pid).await;
    }
    let _ = std::fs::remove_file(&paths.pid);
    let _ = std::fs::remove_file(&paths.fingerprint);
    Ok(pid)
}

/// The local stand-in for RDS's final snapshot: the environment's database,
/// dumped by pg_dump (custom format, `pg_restore` reads it) into the local
/// stack's `snapshots/` directory. `None` when the database does not exist.
pub async fn dump_database(
    config: &Config,
    user: &str,
    password: &str,
) -> anyhow::Result<Option<PathBuf>> {
    let (host, port) = local_server(config)?;
    let mut admin = admin_connection(config, user, password).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)")
            .bind(&config.database.name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        return Ok(None);
    }
    let home = paths(config)?
        .pid
        .parent()
        .and_then(|run| run.parent())
        .map(PathBuf::from)
        .ok_or_else(|| anyhow!("the local stack has no home directory"))?;
    let dir = home.join("snapshots");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let file = dir.join(format!(
        "{}-{}-final-{stamp}.dump",
        config.name, config.database.name
    ));
    let out = tokio::process::Command::new(pg_tool("pg_dump"))
        .args(["--format=custom", "--no-password", "--file"])
        .arg(&file)
        .args([
            "--host",
            &host,
            "--port",
            &port.to_string(),
            "--username",
            user,
        ])
        .arg(&config.database.name)
        // The password goes by environment, never on a command line.
        .env("PGPASSWORD", password)
        .output()
        .await
        .context("running pg_dump (installed with PostgreSQL by ./localstack/install.sh)")?;
    if !out.status.success() {
        bail!(
            "pg_dump of database {} failed: {}",
            config.database.name,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(Some(file))
}

/// Drops the environment's database from the local server (its sessions
/// ended first), as deleting the RDS instance takes it with it.
pub async fn drop_database(config: &Config, user: &str, password: &str) -> anyhow::Result<()> {
    let mut admin = admin_connection(config, user, password).await?;
    // The name was checked to be a plain lower-case identifier.
    sqlx::query(&format!(
        "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
        config.database.name
    ))
    .execute(&mut admin)
    .await
    .with_context(|| format!("dropping database {}", config.database.name))?;
    release_server(&mut admin, &config.name).await
}

/// How a stand-in server says which environment it serves: a comment on its
/// `postgres` database (there is no server-wide comment).
const CLAIM_PREFIX: &str = "poolside stand-in for environment ";

/// Claims a stand-in PostgreSQL for one environment, or refuses when another
/// holds it. An RDS instance serves one environment; a local server shared by
/// two would not: roles are server-wide, so each deploy would reset the
/// other's `authenticator` password and its API would answer 503.
pub async fn claim_server(
    admin: &mut sqlx::PgConnection,
    environment: &str,
    server: &str,
) -> anyhow::Result<()> {
    let claim: Option<String> = sqlx::query_scalar(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = 'postgres'",
    )
    .fetch_one(&mut *admin)
    .await
    .context("reading which environment the local PostgreSQL serves")?;
    match claim.as_deref().and_then(|c| c.strip_prefix(CLAIM_PREFIX)) {
        Some(holder) if holder == environment => Ok(()),
        Some(holder) => bail!(
            "the PostgreSQL at {server} already stands in for environment `{holder}`'s RDS instance. \
             Roles are server-wide, so deploying `{environment}` there would reset `{holder}`'s \
             authenticator password and break its API. Give `{environment}` a server of its own, e.g. \
             `POOLSIDE_PG_PORT=15433 POOLSIDE_PG_DATA=/var/lib/poolside/{environment} localstack/postgres.sh start` \
             and `connect_port = 15433` under [database] in its file; or, if `{holder}` is gone, \
             `poolside destroy --env {holder}` frees the server. Nothing was changed in the database"
        ),
        None => {
            // `environment` was checked to be a plain name (letters, digits, '-').
            sqlx::query(&format!(
                "COMMENT ON DATABASE postgres IS '{CLAIM_PREFIX}{environment}'"
            ))
            .execute(&mut *admin)
            .await
            .context("recording which environment the local PostgreSQL serves")?;
            Ok(())
        }
    }
}

/// Frees a stand-in server that `environment` held (destroy).
async fn release_server(admin: &mut sqlx::PgConnection, environment: &str) -> anyhow::Result<()> {
    sqlx::query(&format!(
        "DO $$ BEGIN IF shobj_description((SELECT oid FROM pg_database WHERE datname = 'postgres'), 'pg_database') = '{CLAIM_PREFIX}{environment}' THEN COMMENT ON DATABASE postgres IS NULL; END IF; END $$"
    ))
    .execute(&mut *admin)
    .await
    .context("freeing the local PostgreSQL for other environments")?;
    Ok(())
}

fn local_server(config: &Config) -> anyhow::Result<(String, u16)> {
    config.database.connect_override.clone().ok_or_else(|| {
        anyhow!("the local PostgreSQL is reached through database.connect_host/connect_port, which are not set")
    })
}

async fn admin_connection(
    config: &Config,
    user: &str,
    password: &str,
) -> anyhow::Result<sqlx::PgConnection> {
    use sqlx::ConnectOptions as _;
    let (host, port) = local_server(config)?;
    let ssl = match config.database.tls {
        DatabaseTls::Disable => sqlx::postgres::PgSslMode::Disable,
        DatabaseTls::VerifyFull => sqlx::postgres::PgSslMode::Require,
    };
    sqlx::postgres::PgConnectOptions::new()
        .host(&host)
        .port(port)
        .username(user)
        .password(password)
        .database("postgres")
        .ssl_mode(ssl)
        .connect()
        .await
        .with_context(|| format!("connecting to the local PostgreSQL at {host}:{port}"))
}

/// A PostgreSQL client program: the local stack's version first (its
/// server's), then whatever is on PATH.
fn pg_tool(name: &str) -> PathBuf {
    let local = PathBuf::from("/usr/lib/postgresql/15/bin").join(name);
    if local.is_file() {
        local
    } else {
        PathBuf::from(name)
    }
}
