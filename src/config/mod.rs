//! Environment files: loading, validation and the phase profiles.
//!
//! Everything here runs before any AWS call: a file that loads is a file the
//! rest of the program can trust.

mod database;
mod file;
mod network;
mod service;
mod source;
mod target;
mod validator;
pub mod windows;

pub use database::{Database, SUPPORTED_MAJORS};
pub use file::{DatabaseTls, NatGateways, Phase, RolloutStrategy, SchemaRunner};
pub use network::{ExistingNetwork, Layout, Network, OwnedNetwork};
pub use service::{Alarms, Api};
pub use source::InvalidEnvironment;
pub use target::{boundary_of, AssumedRole, RoleSettings, SESSION_CHAINED_MAX};

use file::EnvironmentFile;
use source::Source;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use validator::{Checked, Validator};

/// Why an environment could not be loaded.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ConfigError {
    #[error("no environment named `{name}` in {dir}: there is no {dir}/{name}.toml (environments here: {})", list_or_none(.available))]
    NotFound {
        name: String,
        dir: String,
        available: Vec<String>,
    },
    #[error("the environments directory {dir} does not exist (--environments-dir, or POOLSIDE_ENVIRONMENTS_DIR; the default is ./environments)")]
    NoDirectory { dir: String },
    #[error("--env {given} is not in the environments directory {dir}: name the environment (`--env NAME`), or pass --environments-dir {given_dir}")]
    OutsideDirectory {
        given: String,
        dir: String,
        given_dir: String,
    },
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: the file is not UTF-8 text (TOML must be): the byte there is 0x{byte:02x}; save it as UTF-8")]
    NotUtf8 {
        path: String,
        line: usize,
        column: usize,
        byte: u8,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(#[from] Box<InvalidEnvironment>),
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// A checked environment: every value here has been validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub name: String,
    pub region: String,
    pub phase: Phase,
    pub endpoint_url: Option<String>,
    /// The emulator runs ECS tasks (`target.emulator_runs_tasks`).
    pub emulator_runs_tasks: bool,
    /// How often a wait asks again (`target.poll_interval_seconds`); `None`
    /// for the default of the target.
    pub poll_interval: Option<std::time::Duration>,
    /// The account every command must reach: `target.account_id`, or the
    /// account of `target.role_arn`.
    pub expected_account_id: Option<String>,
    /// The operator's own credentials (`target.profile`); `None`: the default chain.
    pub profile: Option<String>,
    /// The role every command acts as (`target.role_arn`), its external id
    /// and session length; the last two also without a role, for the
    /// template `poolside onboarding` prints.
    pub role_settings: RoleSettings,
    pub network: Network,
    pub storage: Storage,
    pub registry: Registry,
    pub database: Database,
    pub api: Api,
    pub alarms: Alarms,
    /// User tags put on every resource, next to poolside's own.
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Storage {
    /// `None`: derived from the environment, account and region at plan time.
    pub bucket_name: Option<String>,
    pub noncurrent_version_expiration_days: u32,
}

#[derive(Debug, Clone)]
pub struct Registry {
    pub repository_name: String,
    /// Untagged images expire this many days after their push.
    pub untagged_image_days: u32,
}

impl Config {
    /// The role every command acts as (`target.role_arn`).
    pub fn role(&self) -> Option<&AssumedRole> {
        self.role_settings.role.as_ref()
    }

    /// The permissions boundary every role poolside makes carries, when the
    /// environment acts as the customer's role: the operator policy lets it
    /// make and change only roles with that boundary.
    pub fn permissions_boundary(&self) -> Option<String> {
        self.role().map(|role| boundary_of(&role.arn))
    }
}

/// The names of the environments in `dir`, sorted.
pub fn list_environments(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            (path.extension()? == "toml").then(|| path.file_stem()?.to_str().map(str::to_string))?
        })
        .collect();
    names.sort();
    names
}

/// Loads and validates `dir/<name>.toml`.
pub fn load(dir: &Path, name: &str) -> Result<Config, ConfigError> {
    let path: PathBuf = dir.join(format!("{name}.toml"));
    if !dir.is_dir() {
        return Err(ConfigError::NoDirectory {
            dir: dir.display().to_string(),
        });
    }
    if !path.is_file() {
        return Err(ConfigError::NotFound {
            name: name.to_string(),
            dir: dir.display().to_string(),
            available: list_environments(dir),
        });
    }
    let bytes = std::fs::read(&path).map_err(|source| ConfigError::Unreadable {
        path: path.display().to_string(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|err| {
        // Where the first bad byte is, as an editor counts lines and columns.
        let bytes = err.as_bytes();
        let good = &bytes[..err.utf8_error().valid_up_to()];
        let line = good.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
        ConfigError::NotUtf8 {
            path: path.display().to_string(),
            line,
            column,
            byte: bytes[good.len()],
        }
    })?;
    parse(&path.display().to_string(), name, text).map_err(ConfigError::Invalid)
}

/// Parses and validates the text of an environment file called `file_name`,
/// expected to describe the environment `expected_name`.
pub fn parse(
    file_name: &str,
    expected_name: &str,
    text: String,
) -> Result<Config, Box<InvalidEnvironment>> {
    let source = Source::new(file_name, text);
    let read = deserialize_all(&source)?;
    let mut problems = read.problems;
    let validated = read
        .raw
        .map(|raw| Validator { source: &source }.validate(raw, expected_name));
    match validated {
        Some(Ok(config)) if problems.is_empty() => return Ok(config),
        // A value put in for an unknown one could be what a later check
        // refuses: those checks wait for the file as written. A key read
        // under the name it misspells is checked, and reported as written.
        Some(Err(invalid)) if !read.values_replaced => {
            let mut invalid = *invalid;
            let others = std::mem::take(&mut invalid.others);
            for problem in std::iter::once(invalid).chain(others) {
                let written = read.renamed.iter().find_map(|(now, written)| {
                    let rest = problem.key.strip_prefix(now.as_str())?;
                    (rest.is_empty() || rest.starts_with(['.', '[']))
                        .then(|| format!("{written}{rest}"))
                });
                problems.push(match written {
                    Some(key) => *source.error_at(&key, problem.message),
                    None => problem,
                });
            }
        }
        _ => {}
    }
    let mut first = problems.remove(0);
    first.others = problems;
    Err(Box::new(first))
}

/// What [`deserialize_all`] read.
struct Read {
    raw: Option<EnvironmentFile>,
    problems: Vec<InvalidEnvironment>,
    /// An unknown enum value was replaced by an allowed one.
    values_replaced: bool,
    /// Misspelled keys read under the known name: (the key now, as written).
    renamed: Vec<(String, String)>,
}

/// Deserializes the file, collecting every unknown key and unknown value at
/// once (serde stops at the first): each is reported, then left out (a key)
/// or replaced by an allowed value (an enum), and the rest is read again.
/// A misspelled key is read under the name it misspells.
fn deserialize_all(source: &Source) -> Result<Read, Box<InvalidEnvironment>> {
    let mut document: toml_edit::DocumentMut = match source.text().parse() {
        Ok(document) => document,
        // Not TOML: toml's own error says where.
        Err(_) => {
            let err = toml::from_str::<EnvironmentFile>(source.text())
                .expect_err("text toml_edit refuses, toml refuses too");
            return Err(source.error_from_toml(&err));
        }
    };
    let mut problems = Vec::new();
    let mut values_replaced = false;
    // (the key as read now, the key as written)
    let mut renamed: Vec<(String, String)> = Vec::new();
    for _ in 0..50 {
        let text = document.to_string();
        let err = match toml::from_str::<EnvironmentFile>(&text) {
            Ok(raw) => {
                return Ok(Read {
                    raw: Some(raw),
                    problems,
                    values_replaced,
                    renamed,
                })
            }
            Err(err) => err,
        };
        // A key left out as misspelled is then missing: said once, with the
        // suggestion.
        if let Some(missing) = err.message().strip_prefix("missing field `") {
            let suggestion = format!("did you mean `{}?", missing.trim_end());
            if problems.iter().any(|p| p.message.ends_with(&suggestion)) {
                break;
            }
        }
        // Located in the text as pruned so far, reported in the file as written.
        let mut found = Source::new("", text).error_from_toml(&err);
        let key_now = found.key.clone();
        // A key read under the name it misspells is reported as written.
        if let Some((_, written)) = renamed.iter().find(|(now, _)| *now == found.key) {
            found.key = written.clone();
        }
        // Every problem pointed at the same way: the key's value as written.
        let at = if problems.is_empty() && found.key == "(top level)" {
            source.error_from_toml(&err)
        } else {
            source.error_at(&found.key, found.message.clone())
        };
        problems.push(*at);
        let suggested = found
            .message
            .rsplit_once("; did you mean `")
            .and_then(|(_, rest)| rest.strip_suffix("`?"));
        match source::prune(&mut document, &key_now, err.message(), suggested) {
            Some(source::Pruned::Removed) => {}
            Some(source::Pruned::Replaced) => values_replaced = true,
            Some(source::Pruned::Renamed(now)) => renamed.push((now, key_now)),
            None => break,
        }
    }
    Ok(Read {
        raw: None,
        problems,
        values_replaced,
        renamed,
    })
}

impl Validator<'_> {
    /// Checks every section, and reports each section's first problem at
    /// once: a user fixes a file in one pass, not one error per run.
    fn validate(&self, raw: EnvironmentFile, expected_name: &str) -> Checked<Config> {
        let mut problems = Vec::new();
        let mut keep = |checked: Checked<()>| {
            if let Err(problem) = checked {
                problems.push(*problem);
            }
        };
        keep(self.check_name(&raw.name, expected_name));
        keep(self.check_region(&raw.region));
        let role_settings = self.check_target(&raw).unwrap_or_else(|problem| {
            keep(Err(problem));
            RoleSettings::default()
        });
        let role_account = role_settings.role.as_ref().map(|r| r.account_id.clone());
        keep(self.check_tags(&raw.tags));
        let network = self.check_network(&raw);
        let storage = self.check_storage(&raw);
        let registry = self.check_registry(&raw);
        let database = self.check_database(&raw);
        let api = self.check_api(&raw);
        let alarms = self.check_alarms(&raw);
        match (network, storage, registry, database, api, alarms) {
            (Ok(network), Ok(storage), Ok(registry), Ok(database), Ok(api), Ok(alarms))
                if problems.is_empty() =>
            {
                Ok(Config {
                    name: raw.name,
                    region: raw.region,
                    phase: raw.phase,
                    endpoint_url: raw.target.endpoint_url,
                    emulator_runs_tasks: raw.target.emulator_runs_tasks,
                    poll_interval: raw
                        .target
                        .poll_interval_seconds
                        .map(std::time::Duration::from_secs),
                    expected_account_id: raw.target.account_id.or(role_account),
                    profile: raw.target.profile,
                    role_settings,
                    network,
                    storage,
                    registry,
                    database,
                    api,
                    alarms,
                    tags: raw.tags,
                })
            }
            (network, storage, registry, database, api, alarms) => {
                problems.extend(
                    [
                        network.err(),
                        storage.err(),
                        registry.err(),
                        database.err(),
                        api.err(),
                        alarms.err(),
                    ]
                    .into_iter()
                    .flatten()
                    .map(|p| *p),
                );
                let mut first = problems.remove(0);
                first.others = problems;
                Err(Box::new(first))
            }
        }
    }

    fn check_name(&self, name: &str, expected: &str) -> Checked<()> {
        let valid = !name.is_empty()
            && name.len() <= 20
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return self.fail(
                "name",
                format!("{name:?} must be 1-20 characters of a-z, 0-9 and '-', starting with a letter (it goes into resource names)"),
            );
        }
        if name != expected {
            return self.fail(
                "name",
                format!("{name:?} does not match the file name; expected {expected:?}"),
            );
        }
        Ok(())
    }

    fn check_region(&self, region: &str) -> Checked<()> {
        let parts: Vec<&str> = region.split('-').collect();
        let valid = parts.len() >= 3
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            })
            && parts
                .last()
                .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()));
        if !valid {
            return self.fail(
                "region",
                format!("{region:?} is not an AWS region name such as \"eu-west-1\""),
            );
        }
        // A typo of a region that exists would otherwise surface as dozens of
        // calls to an endpoint that does not exist. A name close to none of
        // them may be a region AWS opened since this list: it is let through.
        if !KNOWN_REGIONS.contains(&region) {
            if let Some(near) = KNOWN_REGIONS
                .iter()
                .filter(|known| source::edit_distance(region, known) <= 2)
                .min_by_key(|known| source::edit_distance(region, known))
            {
                return self.fail(
                    "region",
                    format!("{region:?} is not an AWS region; did you mean {near:?}?"),
                );
            }
        }
        Ok(())
    }

    fn check_tags(&self, tags: &BTreeMap<String, String>) -> Checked<()> {
        // AWS allows 50 tags per resource, poolside's own included.
        if tags.len() > MAX_USER_TAGS {
            return self.fail(
                "tags",
                format!(
                    "{} tags: AWS allows 50 per resource, and poolside adds up to {} of its own (poolside:env, poolside:id, poolside:tier, Name), so at most {MAX_USER_TAGS}",
                    tags.len(),
                    50 - MAX_USER_TAGS
                ),
            );
        }
        for (key, value) in tags {
            let path = format!("tags.{key}");
            let lower = key.to_ascii_lowercase();
            if lower.starts_with("aws:") || lower.starts_with("poolside:") || key == "Name" {
                return self.fail(&path, format!("tag key {key:?} is reserved (aws:, poolside: and Name are set by poolside)"));
            }
            if key.is_empty() || key.chars().count() > 128 {
                return self.fail(&path, "tag keys must be 1-128 characters");
            }
            if value.chars().count() > 256 {
                return self.fail(&path, "tag values must be at most 256 characters");
            }
        }
        Ok(())
    }

    fn check_storage(&self, raw: &EnvironmentFile) -> Checked<Storage> {
        if let Some(name) = &raw.storage.bucket_name {
            let valid = (3..=63).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
                && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                && name.ends_with(|c: char| c.is_ascii_alphanumeric())
                && !name.contains("..");
            if !valid {
                return self.fail(
                    "storage.bucket_name",
                    format!("{name:?} is not a valid S3 bucket name (3-63 of a-z, 0-9, '-', '.')"),
                );
            }
        }
        let days = raw.storage.noncurrent_version_expiration_days.unwrap_or(30);
        if days == 0 {
            return self.fail(
                "storage.noncurrent_version_expiration_days",
                "must be at least 1 day",
            );
        }
        Ok(Storage {
            bucket_name: raw.storage.bucket_name.clone(),
            noncurrent_version_expiration_days: days,
        })
    }

    fn check_registry(&self, raw: &EnvironmentFile) -> Checked<Registry> {
        let name = raw
            .registry
            .repository_name
            .clone()
            .unwrap_or_else(|| format!("poolside/{}/postgrest", raw.name));
        let valid = (2..=256).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_./".contains(c))
            && name.starts_with(|c: char| c.is_ascii_alphanumeric());
        if !valid {
            return self.fail(
                "registry.repository_name",
                format!("{name:?} is not a valid ECR repository name"),
            );
        }
        if raw.registry.keep_last_images.is_some() {
            return self.fail(
                "registry.keep_last_images",
                "was removed: counting images expired releases that task definitions still named, and the schema runner's image (pushed once, so always the oldest). The repository's lifecycle policy now expires only untagged images (`registry.untagged_image_days`, default 14); every image poolside pushes is tagged. Delete this line".to_string(),
            );
        }
        let untagged_days = raw.registry.untagged_image_days.unwrap_or(14);
        if !(1..=3650).contains(&untagged_days) {
            return self.fail(
                "registry.untagged_image_days",
                format!("{untagged_days} must be between 1 and 3650"),
            );
        }
        Ok(Registry {
            repository_name: name,
            untagged_image_days: untagged_days,
        })
    }
}

impl Validator<'_> {}

/// AWS's limit of 50 tags per resource, less poolside's own four.
const MAX_USER_TAGS: usize = 46;

/// The AWS regions as of 2026-11 (commercial, China, GovCloud, European
/// Sovereign Cloud), to catch a misspelt region before any call.
#[rustfmt::skip]
const KNOWN_REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "ca-west-1",
    "mx-central-1",
    "sa-east-1",
    "eu-central-1",
    "eu-central-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-south-1",
    "eu-south-2",
    "eu-north-1",
    "eusc-de-east-1",
    "af-south-1",
    "il-central-1",
    "me-south-1",
    "me-central-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "cn-north-1",
    "cn-northwest-1",
    "us-gov-east-1",
    "us-gov-west-1",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn aws_file(database: &str) -> String {
        format!(
            "name = \"t\"\nregion = \"eu-west-1\"\nphase = \"pilot\"\n[network]\nvpc_cidr = \"10.1.0.0/16\"\n\
             availability_zones = [\"eu-west-1a\", \"eu-west-1b\"]\nallowed_ingress_cidrs = [\"203.0.113.0/24\"]\n\
             [database]\n{database}\n"
        )
    }

    fn runner(database: &str) -> Result<SchemaRunner, String> {
        parse("t.toml", "t", aws_file(database))
            .map(|c| c.database.schema_runner)
            .map_err(|e| format!("{:?}", miette::Report::new(*e)))
    }

    #[test]
    fn every_unknown_key_and_value_is_reported_in_one_run() {
        let text = aws_file("schema_runner = \"deploy-hots\"\nconect_port = 5432")
            .replace("phase = \"pilot\"", "phase = \"pilto\"")
            .replace("[network]\n", "[network]\nnat_gateway = \"one\"\n");
        let invalid = parse("t.toml", "t", text).unwrap_err();
        let mut problems: Vec<(String, String)> = std::iter::once(&*invalid)
            .chain(invalid.others.iter())
            .map(|p| (p.key.clone(), p.message.clone()))
            .collect();
        problems.sort();
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "database.conect_port",
                "database.schema_runner",
                // misspelled, and its value is none of the allowed ones
                "network.nat_gateway",
                "network.nat_gateway",
                "phase"
            ],
            "{problems:?}"
        );
        assert!(
            problems[0].1.contains("did you mean `connect_port`"),
            "{problems:?}"
        );
        // vpc_cidr misspelled is not reported again as missing, and what
        // follows it in other sections is still read.
        let text = aws_file("tsl = \"verify-full\"").replace("vpc_cidr", "vpc_cdir");
        let invalid = parse("t.toml", "t", text).unwrap_err();
        assert!(invalid.message.contains("did you mean `vpc_cidr`"));
        let others: Vec<&str> = invalid.others.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(others, ["database.tsl"], "{:?}", invalid.others);
        assert!(problems[1].1.contains("deploy-hots"), "{problems:?}");
        // Each where it is written in the file.
        assert!(invalid.line > 0);
        for other in &invalid.others {
            assert!(other.line > 1 || other.key == "phase", "{other:?}");
        }

        // Unknown keys alone: the checks of the values run too, also of a
        // misspelled key's value (connect_port needs connect_host), which
        // is reported where it is written.
        let text = aws_file("conect_port = 5432")
            .replace("vpc_cidr = \"10.1.0.0/16\"", "vpc_cidr = \"10.1.0.0/33\"");
        let invalid = parse("t.toml", "t", text).unwrap_err();
        let keys: Vec<&str> = std::iter::once(&*invalid)
            .chain(invalid.others.iter())
            .map(|p| p.key.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "database.conect_port",
                "network.vpc_cidr",
                "database.conect_port"
            ],
            "{keys:?}"
        );
    }

    #[test]
    fn a_zone_past_the_region_s_last_and_an_open_load_balancer_in_full_are_refused() {
        let error = |text: String| {
            parse("t.toml", "t", text)
                .err()
                .map(|e| format!("{}: {}", e.key, e.message))
        };
        let zone = error(aws_file("").replace("eu-west-1b", "eu-west-1q")).unwrap();
        assert!(
            zone.starts_with("network.availability_zones[1]")
                && zone.contains("eu-west-1a to eu-west-1c"),
            "{zone}"
        );
        assert_eq!(
            error(aws_file("").replace("eu-west-1b", "eu-west-1c")),
            None
        );

        let open = aws_file("").replace("203.0.113.0/24", "0.0.0.0/0");
        assert_eq!(
            error(open.clone()),
            None,
            "pilot warns (in every plan), does not refuse"
        );
        let full = open.replace("phase = \"pilot\"", "phase = \"full\"");
        let refused = error(full.clone()).unwrap();
        assert!(
            refused.starts_with("network.allowed_ingress_cidrs[0]")
                && refused.contains("network.open_to_internet = true"),
            "{refused}"
        );
        let meant = full.replace("[database]", "open_to_internet = true\n[database]");
        assert_eq!(error(meant), None);
    }

    #[test]
    fn the_schema_runs_in_the_vpc_unless_this_machine_has_a_way_in() {
        assert_eq!(runner(""), Ok(SchemaRunner::EcsTask));
        assert_eq!(
            runner("admin_ingress_cidrs = [\"10.8.0.0/16\"]"),
            Ok(SchemaRunner::DeployHost)
        );
        assert_eq!(
            runner("connect_host = \"127.0.0.1\"\nconnect_port = 15432"),
            Ok(SchemaRunner::DeployHost)
        );
        assert_eq!(
            runner("schema_runner = \"deploy-host\""),
            Ok(SchemaRunner::DeployHost)
        );
    }

    #[test]
    fn the_poll_interval_is_the_targets_unless_the_file_sets_one_within_a_minute() {
        let with = |target: &str| {
            let text = aws_file("").replace("[network]", &format!("[target]\n{target}\n[network]"));
            parse("t.toml", "t", text)
                .map(|c| c.poll_interval)
                .map_err(|e| format!("{}: {}", e.key, e.message))
        };
        assert_eq!(with(""), Ok(None));
        assert_eq!(
            with("poll_interval_seconds = 5"),
            Ok(Some(std::time::Duration::from_secs(5)))
        );
        for wrong in ["0", "61"] {
            let err = with(&format!("poll_interval_seconds = {wrong}")).unwrap_err();
            assert!(
                err.starts_with("target.poll_interval_seconds: ")
                    && err.contains("between 1 and 60"),
                "{err}"
            );
        }
    }

    /// The task runner on an emulator only where the emulator runs tasks (the
    /// realistic layer in tests/), and that switch only on an emulator.
    #[test]
    fn the_task_runner_needs_an_emulator_that_runs_tasks() {
        let emulator = |target: &str, database: &str| {
            let text =
                aws_file(database).replace("[network]", &format!("[target]\n{target}\n[network]"));
            parse("t.toml", "t", text)
                .map(|c| c.database.schema_runner)
                .map_err(|e| format!("{}: {}", e.key, e.message))
        };
        let moto = "endpoint_url = \"http://127.0.0.1:4566\"";
        let task = "schema_runner = \"ecs-task\"\nconnect_host = \"127.0.0.1\"\nconnect_port = 15432\ntls = \"disable\"";
        let err = emulator(moto, task).unwrap_err();
        assert!(err.contains("the emulator runs no tasks"), "{err}");
        let runs_tasks = format!("{moto}\nemulator_runs_tasks = true");
        assert_eq!(emulator(&runs_tasks, task), Ok(SchemaRunner::EcsTask));
        let err = emulator("emulator_runs_tasks = true", "").unwrap_err();
        assert!(
            err.contains("target.emulator_runs_tasks")
                && err.contains("only applies to an emulator"),
            "{err}"
        );
    }

    #[test]
    fn settings_the_schema_task_would_ignore_are_refused() {
        let bundle = concat!(env!("CARGO_MANIFEST_DIR"), "/certs/rds-ca-bundle.pem");
        let err = runner(&format!(
            "schema_runner = \"ecs-task\"\nca_bundle = {bundle:?}"
        ))
        .unwrap_err();
        assert!(
            err.contains("database.ca_bundle") && err.contains("trusts the bundle in its image"),
            "{err}"
        );
        let err = runner(
            "schema_runner = \"ecs-task\"\nconnect_host = \"127.0.0.1\"\nconnect_port = 15432",
        )
        .unwrap_err();
        assert!(
            err.contains("database.connect_host") && err.contains("a task inside the VPC"),
            "{err}"
        );
    }

    /// The customer's network, or one poolside makes: each wrong or mixed
    /// key is named before any AWS call.
    #[test]
    fn whose_network_it_is_is_read_from_the_keys_and_mixed_keys_refused() {
        let network = |lines: &str| {
            let text = aws_file("").replace(
                "vpc_cidr = \"10.1.0.0/16\"\navailability_zones = [\"eu-west-1a\", \"eu-west-1b\"]\n",
                lines,
            );
            parse("t.toml", "t", text).map_err(|e| format!("{}: {}", e.key, e.message))
        };
        let good = "vpc_id = \"vpc-0a1b2c3d4e5f67890\"\npublic_subnet_ids = [\"subnet-00000001\", \"subnet-00000002\"]\nprivate_subnet_ids = [\"subnet-00000003\", \"subnet-00000004\"]\n";
        let config = network(good).unwrap();
        let Layout::Existing(existing) = &config.network.layout else {
            panic!("{:?}", config.network.layout);
        };
        assert!(existing.create_endpoints);
        assert_eq!(existing.private_subnet_ids[1], "subnet-00000004");
        let cases = [
            ("", "network: set vpc_cidr and availability_zones"),
            (
                &format!("{good}vpc_cidr = \"10.1.0.0/16\"\n"),
                "network.vpc_id: set either vpc_cidr",
            ),
            (
                &format!("{good}nat_gateways = \"shared\"\n"),
                "network.nat_gateways: belongs to a network poolside makes",
            ),
            (
                &good.replace("vpc-0a1b2c3d4e5f67890", "vpc-x"),
                "network.vpc_id: \"vpc-x\" is not a VPC id",
            ),
            (
                &good.replace("\"subnet-00000002\"", "\"subnet-00000001\""),
                "network.public_subnet_ids[1]: subnet-00000001 is listed twice",
            ),
            (
                &good.replace(", \"subnet-00000004\"", ""),
                "network.private_subnet_ids: lists 1 subnet(s)",
            ),
            (
                "vpc_cidr = \"10.1.0.0/16\"\navailability_zones = [\"eu-west-1a\", \"eu-west-1b\"]\ncreate_endpoints = false\n",
                "network.create_endpoints: belongs to the customer's network",
            ),
        ];
        for (lines, expected) in cases {
            let err = network(lines).unwrap_err();
            assert!(err.starts_with(expected), "{lines:?}: {err}");
        }
    }

    /// A role named like the roles poolside manages could change itself;
    /// a role in another account than the pinned one reaches the wrong account.
    #[test]
    fn a_role_that_could_edit_itself_or_is_elsewhere_is_refused() {
        let with_target = |lines: &str| {
            parse(
                "t.toml",
                "t",
                format!("{}\n[target]\n{lines}\n", aws_file("")),
            )
            .map_err(|e| format!("{}: {}", e.key, e.message))
        };
        let err = with_target("role_arn = \"arn:aws:iam::111122223333:role/poolside-t-deployer\"")
            .unwrap_err();
        assert!(
            err.starts_with("target.role_arn: the role's name starts with poolside-t-"),
            "{err}"
        );
        let err = with_target("account_id = \"111122223333\"\nrole_arn = \"arn:aws:iam::444455556666:role/poolside-operator/x\"").unwrap_err();
        assert!(
            err.starts_with("target.role_arn: the role is in account 444455556666"),
            "{err}"
        );
        let err = with_target(
            "role_arn = \"arn:aws:iam::111122223333:role/x\"\nsession_duration = \"13h\"",
        )
        .unwrap_err();
        assert!(
            err.starts_with("target.session_duration: 13h is not between 15m and 12h"),
            "{err}"
        );
        let config = with_target("role_arn = \"arn:aws:iam::111122223333:role/poolside-operator/poolside-operator-t\"\nexternal_id = \"ab-12\"").unwrap();
        assert_eq!(
            config.expected_account_id.as_deref(),
            Some("111122223333"),
            "the role's account is the one to reach"
        );
        assert_eq!(config.role().unwrap().external_id.as_deref(), Some("ab-12"));
    }
}
