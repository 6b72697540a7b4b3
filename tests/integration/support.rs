//! Fixtures: a throwaway environment directory with a uniquely named
//! environment, the poolside binary run against the local stack, and SDK
//! clients to check what really exists.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

pub fn endpoint() -> String {
    std::env::var("POOLSIDE_TEST_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4566".into())
}

/// Fails loudly (not skips) when the emulator is not there: these tests must run.
pub fn require_emulator() {
    let url = endpoint();
    let address = url.trim_start_matches("http://").trim_end_matches('/');
    if std::net::TcpStream::connect(address).is_err() {
        panic!("no AWS emulator answers at {url}: run ./test.sh, or localstack/moto.sh start");
    }
}

/// A unique, valid environment name: tests share one emulator and must not collide.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}{:x}{n}", (nanos ^ std::process::id()) & 0xfffff)
}

pub struct Env {
    pub name: String,
    pub phase: &'static str,
    dir: tempfile::TempDir,
    pub allowed_cidrs: Vec<String>,
    pub vpc_cidr: String,
    pub extra: String,
    /// Lines added to the `[database]` table.
    pub database_extra: String,
    /// The environment's own PostgreSQL, standing in for its RDS instance.
    pub postgres: LocalPostgres,
    /// Where deploy starts the environment's PostgREST (the admin server on the next port).
    pub api_port: u16,
    /// Lines added to the `[api]` and `[alarms]` tables.
    pub api_extra: String,
    pub alarms_extra: String,
    /// The AWS endpoint the file names: the emulator, or a proxy in front of it.
    pub endpoint: String,
    /// Lines added to the `[target]` table.
    pub target_extra: String,
    /// `database.tls`: `disable` for the stand-in, `verify-full` to test TLS.
    pub database_tls: &'static str,
    /// The `[network]` lines that say whose network it is; `None`: one
    /// poolside makes in `vpc_cidr`.
    pub network: Option<String>,
}

/// A free port whose next port is free too (PostgREST's API and admin
/// servers). Taken below Linux's ephemeral range (32768+), where the test
/// clusters' ports (bound to port 0 and released) come from, so the two
/// cannot race for the same port.
pub fn free_port_pair() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = 20_000 + (std::process::id() % 1_000) * 2;
    loop {
        let offset = NEXT.fetch_add(2, Ordering::SeqCst);
        let port = (base + offset % 10_000) as u16;
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 1) {
            return port;
        }
    }
}

fn poolside_home() -> PathBuf {
    std::env::var_os("POOLSIDE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".local/share/poolside")
        })
}

/// Where deploy keeps the pid of an environment's local PostgREST: keyed by
/// the environment and its stack (the endpoint, as a file name).
pub fn local_api_pid_file(environment: &str, endpoint: &str) -> PathBuf {
    let stack: String = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    poolside_home()
        .join("run")
        .join(format!("postgrest-{environment}@{stack}.pid"))
}

impl Drop for Env {
    /// The environment's PostgREST goes with it (deploy started it detached).
    fn drop(&mut self) {
        let pid_file = local_api_pid_file(&self.name, &self.endpoint);
        if let Ok(pid) = std::fs::read_to_string(&pid_file) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let _ = std::fs::remove_file(pid_file);
        }
    }
}

/// A PostgreSQL cluster of one test's own, started with the local stack's
/// script (pg_cron preloaded for `database`, pgvector installed), on a free
/// port, with the master login moto's RDS secret holds. Stopped on drop.
pub struct LocalPostgres {
    pub port: u16,
    pub database: String,
    dir: tempfile::TempDir,
}

pub const MASTER_USER: &str = "admin";
pub const MASTER_PASSWORD: &str = "P@55w0rd!";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("localstack/postgres.sh")
}

impl LocalPostgres {
    /// Tries three times, each on a new port and directory: the port is
    /// free when picked, but another test's process may take it before
    /// PostgreSQL binds it (CI saw `pg_ctl: could not start server` once).
    pub fn start(database: &str) -> LocalPostgres {
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let dir = tempfile::tempdir().unwrap();
            let pg = LocalPostgres {
                port,
                database: database.to_string(),
                dir,
            };
            let out = pg.script("start");
            if out.status.success() {
                return pg;
            }
            let log =
                std::fs::read_to_string(pg.dir.path().join("postgres.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            failures.push(format!(
                "port {port}: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        panic!(
            "localstack/postgres.sh start failed three times (run ./localstack/install.sh first):\n{}",
            failures.join("\n")
        );
    }

    /// Stops and starts the cluster: pg_cron's launcher, which stops for
    /// good when the database it serves is dropped (a local destroy), runs
    /// again. On RDS a destroy deletes the whole server.
    pub fn restart(&self) {
        for command in ["stop", "start"] {
            let out = self.script(command);
            assert!(
                out.status.success(),
                "localstack/postgres.sh {command}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    fn script(&self, command: &str) -> Output {
        Command::new(script())
            .arg(command)
            .env("POOLSIDE_PG_DATA", self.dir.path().join("data"))
            .env("POOLSIDE_PG_PORT", self.port.to_string())
            .env("POOLSIDE_PG_CRON_DB", &self.database)
            .output()
            .expect("localstack/postgres.sh runs")
    }

    pub fn options(
        &self,
        user: &str,
        password: &str,
        database: &str,
    ) -> sqlx::postgres::PgConnectOptions {
        sqlx::postgres::PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .username(user)
            .password(password)
            .database(database)
            .ssl_mode(sqlx::postgres::PgSslMode::Disable)
    }

    /// The master user, in the app database.
    pub async fn master(&self) -> sqlx::PgConnection {
        use sqlx::ConnectOptions;
        self.options(MASTER_USER, MASTER_PASSWORD, &self.database)
            .connect()
            .await
            .expect("the master user connects to the app database")
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        let _ = self.script("stop");
    }
}

impl Env {
    pub fn new(prefix: &str) -> Env {
        require_emulator();
        let name = unique_name(prefix);
        let database = format!("app_{}", name.replace('-', "_"));
        Env {
            postgres: LocalPostgres::start(&database),
            name,
            phase: "pilot",
            dir: tempfile::tempdir().unwrap(),
            allowed_cidrs: vec!["198.51.100.0/24".into()],
            vpc_cidr: "10.20.0.0/16".into(),
            extra: String::new(),
            database_extra: String::new(),
            api_port: free_port_pair(),
            api_extra: String::new(),
            alarms_extra: String::new(),
            endpoint: endpoint(),
            target_extra: String::new(),
            database_tls: "disable",
            network: None,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self) -> PathBuf {
        self.dir().join(format!("{}.toml", self.name))
    }

    pub fn write(&self) {
        let allowed: Vec<String> = self
            .allowed_cidrs
            .iter()
            .map(|c| format!("{c:?}"))
            .collect();
        let text = format!(
            "name = \"{name}\"\nregion = \"us-east-1\"\nphase = \"{phase}\"\n\n[target]\nendpoint_url = \"{endpoint}\"\n{target_extra}\n\
             [network]\n{network}\n\
             allowed_ingress_cidrs = [{allowed}]\n{extra}\n[tags]\nsuite = \"integration\"\n\n\
             [database]\nname = \"{database}\"\nconnect_host = \"127.0.0.1\"\nconnect_port = {port}\ntls = \"{tls}\"\n{database_extra}\n\
             [api]\nlocal_port = {api_port}\n{api_extra}\n[alarms]\n{alarms_extra}\n",
            name = self.name,
            phase = self.phase,
            endpoint = self.endpoint,
            target_extra = self.target_extra,
            network = self.network.clone().unwrap_or_else(|| format!(
                "vpc_cidr = \"{}\"\navailability_zones = [\"us-east-1a\", \"us-east-1b\"]",
                self.vpc_cidr
            )),
            allowed = allowed.join(", "),
            extra = self.extra,
            database = self.postgres.database,
            port = self.postgres.port,
            database_extra = self.database_extra,
            tls = self.database_tls,
            api_port = self.api_port,
            api_extra = self.api_extra,
            alarms_extra = self.alarms_extra,
        );
        std::fs::write(self.file(), text).unwrap();
    }

    pub fn poolside(&self, args: &[&str]) -> Run {
        poolside_in(self.dir(), args)
    }

    /// `deploy --yes --output json --stats`, which must succeed.
    pub fn deploy(&self) -> Run {
        let run = self.poolside(&[
            "deploy", "--env", &self.name, "--yes", "--output", "json", "--stats",
        ]);
        run.assert_code(0);
        // Every JSON run ends with exactly one result line.
        let last = run.stdout().lines().last().unwrap_or_default().to_string();
        let result: serde_json::Value = serde_json::from_str(&last).unwrap();
        assert_eq!(
            (result["type"].as_str(), result["status"].as_str()),
            (Some("result"), Some("ok")),
            "{last}"
        );
        run
    }

    /// `plan --detailed-exitcode --output json --stats`.
    pub fn plan(&self) -> Run {
        self.poolside(&[
            "plan",
            "--env",
            &self.name,
            "--detailed-exitcode",
            "--output",
            "json",
            "--stats",
        ])
    }
}

pub fn poolside_in(dir: &Path, args: &[&str]) -> Run {
    poolside_with(dir, args, &[])
}

/// poolside with these environment variables set (and no AWS credentials of
/// the caller's otherwise).
pub fn poolside_with(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_poolside"))
        .arg("--environments-dir")
        .arg(dir)
        .args(args)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ACCESS_KEY_ID")
        .envs(vars.iter().copied())
        .output()
        .expect("poolside runs");
    Run { output }
}

/// poolside started in the background on the environment's directory, its
/// stdout and stderr piped, for tests that race it or stop it mid-way.
pub fn spawn(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_poolside"))
        .arg("--environments-dir")
        .arg(env.dir())
        .args(args)
        .env_remove("AWS_PROFILE")
        .envs(vars.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

pub struct Run {
    pub output: Output,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn assert_code(&self, expected: i32) {
        assert_eq!(
            self.code(),
            expected,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr()
        );
    }

    /// The JSON lines on stdout of the given type.
    pub fn json(&self, kind: &str) -> Vec<Value> {
        self.stdout()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == kind)
            .collect()
    }

    pub fn one(&self, kind: &str) -> Value {
        let mut all = self.json(kind);
        assert_eq!(
            all.len(),
            1,
            "expected one {kind} line in:\n{}",
            self.stdout()
        );
        all.remove(0)
    }

    /// How many calls of one operation the run made (from `--stats`).
    pub fn calls_of(&self, service: &str, operation: &str) -> u64 {
        self.one("stats")["calls"]["operations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|op| op["service"] == service && op["operation"] == operation)
            .map(|op| op["calls"].as_u64().unwrap())
            .sum()
    }

    /// Mutating calls to the environment: the lock and history objects of
    /// the state bucket (S3 PutObject and DeleteObject, which nothing else
    /// of poolside's calls) are bookkeeping, not changes, and are left out.
    pub fn mutating_calls(&self) -> u64 {
        let stats = self.one("stats");
        let bookkeeping: u64 = stats["calls"]["operations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|op| {
                op["service"] == "S3"
                    && matches!(op["operation"].as_str(), Some("PutObject" | "DeleteObject"))
            })
            .map(|op| op["calls"].as_u64().unwrap())
            .sum();
        stats["calls"]["mutating_calls"].as_u64().unwrap() - bookkeeping
    }
}

pub struct Aws {
    pub ec2: aws_sdk_ec2::Client,
    pub s3: aws_sdk_s3::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub rds: aws_sdk_rds::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub iam: aws_sdk_iam::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub autoscaling: aws_sdk_applicationautoscaling::Client,
    pub acm: aws_sdk_acm::Client,
    pub route53: aws_sdk_route53::Client,
}

pub async fn aws() -> Aws {
    aws_at(&endpoint()).await
}

/// Plain HTTP: the emulator and the tests' proxies listen on loopback without TLS.
fn test_http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new().build_http()
}

/// SDK clients for an endpoint of the tests' own (a proxy in front of the emulator).
pub async fn aws_at(endpoint: &str) -> Aws {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(test_http_client())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await;
    let s3 = aws_sdk_s3::config::Builder::from(&config)
        .force_path_style(true)
        .build();
    Aws {
        ec2: aws_sdk_ec2::Client::new(&config),
        s3: aws_sdk_s3::Client::from_conf(s3),
        ecr: aws_sdk_ecr::Client::new(&config),
        rds: aws_sdk_rds::Client::new(&config),
        secrets: aws_sdk_secretsmanager::Client::new(&config),
        iam: aws_sdk_iam::Client::new(&config),
        logs: aws_sdk_cloudwatchlogs::Client::new(&config),
        ecs: aws_sdk_ecs::Client::new(&config),
        elb: aws_sdk_elasticloadbalancingv2::Client::new(&config),
        cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
        autoscaling: aws_sdk_applicationautoscaling::Client::new(&config),
        acm: aws_sdk_acm::Client::new(&config),
        route53: aws_sdk_route53::Client::new(&config),
    }
}

pub fn env_filter(env: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name("tag:poolside:env")
        .values(env)
        .build()
}

pub fn tag<'a>(tags: &'a [aws_sdk_ec2::types::Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// A Route 53 zone for `name`, made directly on the emulator; its id.
pub async fn hosted_zone(aws: &Aws, name: &str) -> String {
    let zone = aws
        .route53
        .create_hosted_zone()
        .name(name)
        .caller_reference(unique_name("zone"))
        .send()
        .await
        .unwrap();
    zone.hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string()
}

/// A proxy of the project's (a Python script) on a free port, in front of
/// `upstream`, once it listens. Stopped when dropped.
pub struct ProxyProcess {
    child: std::process::Child,
    pub url: String,
}

impl ProxyProcess {
    /// `script` (relative to the repository) with `PORT UPSTREAM ARGS...`;
    /// its standard error is the test's unless `quiet`.
    pub fn start(script: &str, upstream: &str, args: &[String], quiet: bool) -> ProxyProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(script))
            .arg(port.to_string())
            .arg(upstream)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(if quiet {
                std::process::Stdio::null()
            } else {
                std::process::Stdio::inherit()
            })
            .spawn()
            .unwrap_or_else(|e| panic!("python3 runs {script}: {e}"));
        let proxy = ProxyProcess {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return proxy;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("{script} did not listen on {port}");
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// localstack/latency_proxy.py in front of the emulator: every read answers
/// `read_ms` later, every change `mutating_ms` later, as AWS's latency makes
/// them.
pub struct LatencyProxy(ProxyProcess);

impl LatencyProxy {
    pub fn start(mutating_ms: u32, read_ms: u32) -> LatencyProxy {
        require_emulator();
        LatencyProxy::in_front_of(&endpoint(), mutating_ms, read_ms)
    }

    pub fn in_front_of(upstream: &str, mutating_ms: u32, read_ms: u32) -> LatencyProxy {
        let delays = [mutating_ms.to_string(), read_ms.to_string()];
        LatencyProxy(ProxyProcess::start(
            "localstack/latency_proxy.py",
            upstream,
            &delays,
            true,
        ))
    }
}

impl std::ops::Deref for LatencyProxy {
    type Target = ProxyProcess;
    fn deref(&self) -> &ProxyProcess {
        &self.0
    }
}

/// A moto server of the test's own (localstack/moto.sh on a free port), for
/// a test that measures: the shared one answers every other test at once.
/// Stopped when dropped.
pub struct PrivateMoto {
    port: u16,
    pub url: String,
}

impl PrivateMoto {
    pub fn start() -> PrivateMoto {
        let port = free_port_pair();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("localstack/moto.sh");
        let started = Command::new(&script)
            .arg("start")
            .env("MOTO_PORT", port.to_string())
            .output()
            .expect("localstack/moto.sh runs");
        assert!(
            started.status.success(),
            "moto did not start on {port}: {}",
            String::from_utf8_lossy(&started.stderr)
        );
        PrivateMoto {
            port,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for PrivateMoto {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("localstack/moto.sh");
        let _ = Command::new(script)
            .arg("stop")
            .env("MOTO_PORT", self.port.to_string())
            .output();
    }
}
