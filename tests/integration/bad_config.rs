//! Bad environment files: each fails with the file, line, column, key and
//! what is wrong, and no AWS call is made (the endpoint is a listener of ours
//! that must see no connection).

use crate::support::poolside_in;
use std::net::TcpListener;

struct Case {
    what: &'static str,
    /// Replaces `{network}` in the template below.
    network: &'static str,
    /// Extra lines at the end of the file.
    extra: &'static str,
    /// Expected in stderr: line:column, key, message.
    location: &'static str,
    key: &'static str,
    message: &'static str,
}

const TEMPLATE: &str = r#"name = "bad"
region = "us-east-1"
phase = "pilot"

[target]
endpoint_url = "{endpoint}"

[network]
{network}
"#;

const GOOD_NETWORK: &str = r#"vpc_cidr = "10.0.0.0/16"
availability_zones = ["us-east-1a", "us-east-1b"]
allowed_ingress_cidrs = ["10.1.0.0/16"]"#;

const CASES: &[Case] = &[
    Case {
        what: "unknown key",
        network: "vpc_cidr = \"10.0.0.0/16\"\navailability_zones = [\"us-east-1a\", \"us-east-1b\"]\nallowed_ingress_cidrs = [\"10.1.0.0/16\"]\nnat_gatways = \"shared\"",
        extra: "",
        location: "bad.toml:12:1",
        key: "`network.nat_gatways`",
        message: "unknown field `nat_gatways`",
    },
    Case {
        what: "wrong type",
        network: "vpc_cidr = 10\navailability_zones = [\"us-east-1a\", \"us-east-1b\"]\nallowed_ingress_cidrs = [\"10.1.0.0/16\"]",
        extra: "",
        location: "bad.toml:9:12",
        key: "`network.vpc_cidr`",
        message: "invalid type: integer `10`, expected a string",
    },
    Case {
        what: "invalid CIDR",
        network: "vpc_cidr = \"10.0.0.0/33\"\navailability_zones = [\"us-east-1a\", \"us-east-1b\"]\nallowed_ingress_cidrs = [\"10.1.0.0/16\"]",
        extra: "",
        location: "bad.toml:9:12",
        key: "`network.vpc_cidr`",
        message: "\"10.0.0.0/33\" is not a valid IPv4 CIDR block",
    },
    Case {
        what: "VPC outside the private ranges",
        network: "vpc_cidr = \"8.8.0.0/16\"\navailability_zones = [\"us-east-1a\", \"us-east-1b\"]\nallowed_ingress_cidrs = [\"10.1.0.0/16\"]",
        extra: "",
        location: "bad.toml:9:12",
        key: "`network.vpc_cidr`",
        message: "8.8.0.0/16 is outside the private ranges",
    },
    Case {
        what: "VPC larger than /16",
        network: "vpc_cidr = \"10.0.0.0/12\"\navailability_zones = [\"us-east-1a\", \"us-east-1b\"]\nallowed_ingress_cidrs = [\"10.1.0.0/16\"]",
        extra: "",
        location: "bad.toml:9:12",
        key: "`network.vpc_cidr`",
        message: "10.0.0.0/12 must be between /16 and /24",
    },
    Case {
        what: "VPC smaller than /24",
        network: "vpc_cidr = \"10.0.0.0/26\"\navailability_zones = [\"us-east-1a\", \"us-east-1b\"]\nallowed_ingress_cidrs = [\"10.1.0.0/16\"]",
        extra: "",
        location: "bad.toml:9:12",
        key: "`network.vpc_cidr`",
        message: "10.0.0.0/26 must be between /16 and /24",
    },
    Case {
        what: "overlapping subnets",
        network: "vpc_cidr = \"10.0.0.0/16\"\navailability_zones = [\"us-east-1a\", \"us-east-1b\"]\nallowed_ingress_cidrs = [\"10.1.0.0/16\"]\npublic_subnet_cidrs = [\"10.0.0.0/24\", \"10.0.1.0/24\"]\nprivate_subnet_cidrs = [\"10.0.2.0/24\", \"10.0.1.128/25\"]",
        extra: "",
        location: "bad.toml:13:40",
        key: "`network.private_subnet_cidrs[1]`",
        message: "10.0.1.128/25 overlaps 10.0.1.0/24 (`network.public_subnet_cidrs[1]`)",
    },
    Case {
        what: "subnet outside the VPC",
        network: "vpc_cidr = \"10.0.0.0/16\"\navailability_zones = [\"us-east-1a\", \"us-east-1b\"]\nallowed_ingress_cidrs = [\"10.1.0.0/16\"]\npublic_subnet_cidrs = [\"10.0.0.0/24\", \"10.9.1.0/24\"]",
        extra: "",
        location: "bad.toml:12:39",
        key: "`network.public_subnet_cidrs[1]`",
        message: "10.9.1.0/24 is outside the VPC CIDR 10.0.0.0/16",
    },
    Case {
        what: "one availability zone",
        network: "vpc_cidr = \"10.0.0.0/16\"\navailability_zones = [\"us-east-1a\"]\nallowed_ingress_cidrs = [\"10.1.0.0/16\"]",
        extra: "",
        location: "bad.toml:10:22",
        key: "`network.availability_zones`",
        message: "needs at least 2 availability zones, found 1",
    },
    Case {
        what: "duplicated availability zone",
        network: "vpc_cidr = \"10.0.0.0/16\"\navailability_zones = [\"us-east-1a\", \"us-east-1a\"]\nallowed_ingress_cidrs = [\"10.1.0.0/16\"]",
        extra: "",
        location: "bad.toml:10:37",
        key: "`network.availability_zones[1]`",
        message: "\"us-east-1a\" is listed twice",
    },
    Case {
        what: "reserved tag",
        network: GOOD_NETWORK,
        extra: "\n[tags]\n\"poolside:env\" = \"other\"\n",
        location: "bad.toml:14:18",
        key: "`tags.poolside:env`",
        message: "is reserved",
    },
    Case {
        what: "unsupported PostgreSQL version",
        network: GOOD_NETWORK,
        extra: "\n[database]\nengine_version = \"12.5\"\n",
        location: "bad.toml:14:18",
        key: "`database.engine_version`",
        message: "is not a PostgreSQL version poolside supports",
    },
    Case {
        what: "a maintenance window RDS cannot read",
        network: GOOD_NETWORK,
        extra: "\n[database]\nmaintenance_window = \"sunday 5am\"\n",
        location: "bad.toml:14:22",
        key: "`database.maintenance_window`",
        message: "is not a weekly window such as \"sun:05:00-sun:06:00\"",
    },
    Case {
        what: "a backup window inside the maintenance window",
        network: GOOD_NETWORK,
        extra: "\n[database]\nmaintenance_window = \"sun:05:00-sun:06:00\"\nbackup_window = \"05:30-06:30\"\n",
        location: "bad.toml:15:17",
        key: "`database.backup_window`",
        message: "overlaps the maintenance window: RDS refuses a backup window inside it",
    },
    Case {
        what: "pg_cron's run history kept for no time at all",
        network: GOOD_NETWORK,
        extra: "\n[database]\ncron_history_days = 0\n",
        location: "bad.toml:14:21",
        key: "`database.cron_history_days`",
        message: "keep at least 1 day",
    },
    Case {
        what: "the database opened to the internet",
        network: GOOD_NETWORK,
        extra: "\n[database]\nadmin_ingress_cidrs = [\"10.8.0.0/16\", \"0.0.0.0/0\"]\n",
        location: "bad.toml:14:39",
        key: "`database.admin_ingress_cidrs[1]`",
        message: "0.0.0.0/0 would open the database to a large part of the internet",
    },
    Case {
        what: "the schema task on an emulator, which runs no tasks",
        network: GOOD_NETWORK,
        extra: "\n[database]\nschema_runner = \"ecs-task\"\n",
        location: "bad.toml:14:17",
        key: "`database.schema_runner`",
        message: "needs real AWS: the emulator runs no tasks",
    },
    Case {
        what: "connect host without port",
        network: GOOD_NETWORK,
        extra: "\n[database]\nconnect_host = \"127.0.0.1\"\n",
        location: "bad.toml:14:16",
        key: "`database.connect_host`",
        message: "needs database.connect_port as well",
    },
    Case {
        what: "reserved master user",
        network: GOOD_NETWORK,
        extra: "\n[database]\nmaster_username = \"authenticator\"\n",
        location: "bad.toml:14:19",
        key: "`database.master_username`",
        message: "is reserved",
    },
    Case {
        what: "storage below the RDS minimum",
        network: GOOD_NETWORK,
        extra: "\n[database]\nallocated_storage_gb = 10\n",
        location: "bad.toml:14:24",
        key: "`database.allocated_storage_gb`",
        message: "10 must be between 20 and 65536",
    },
    Case {
        what: "a task size Fargate does not offer",
        network: GOOD_NETWORK,
        extra: "\n[api]\ncpu = 256\nmemory = 4096\n",
        location: "bad.toml:15:10",
        key: "`api.memory`",
        message: "cpu 256 with memory 4096 MiB is not a Fargate task size",
    },
    Case {
        what: "a certificate from another region",
        network: GOOD_NETWORK,
        extra: "\n[api]\ncertificate_arn = \"arn:aws:acm:eu-west-1:123456789012:certificate/abc\"\n",
        location: "bad.toml:14:19",
        key: "`api.certificate_arn`",
        message: "the certificate is in eu-west-1, but a load balancer in us-east-1 needs one from its own region",
    },
    Case {
        what: "a certificate without the name it is for",
        network: GOOD_NETWORK,
        extra: "\n[api]\ncertificate_arn = \"arn:aws:acm:us-east-1:123456789012:certificate/abc\"\n",
        location: "bad.toml:14:19",
        key: "`api.certificate_arn`",
        message: "needs api.domain_name as well",
    },
    Case {
        what: "a hosted zone without the name to create in it",
        network: GOOD_NETWORK,
        extra: "\n[api]\nhosted_zone_id = \"Z0123456789ABCDEFGHIJ\"\n",
        location: "bad.toml:14:18",
        key: "`api.hosted_zone_id`",
        message: "needs api.domain_name as well",
    },
    Case {
        what: "a domain name that is not one",
        network: GOOD_NETWORK,
        extra: "\n[api]\ndomain_name = \"https://api.example.com\"\n",
        location: "bad.toml:14:15",
        key: "`api.domain_name`",
        message: "is not a DNS name such as \"api.example.com\"",
    },
    Case {
        what: "fewer tasks at most than at least",
        network: GOOD_NETWORK,
        extra: "\n[api]\ndesired_count = 3\nmax_count = 2\n",
        location: "bad.toml:15:13",
        key: "`api.max_count`",
        message: "2 must be between api.desired_count (3) and 100",
    },
    Case {
        what: "a p99 alarm below the p95 one",
        network: GOOD_NETWORK,
        extra: "\n[alarms]\np95_latency_ms = 900\np99_latency_ms = 500\n",
        location: "bad.toml:15:18",
        key: "`alarms.p99_latency_ms`",
        message: "500 is below alarms.p95_latency_ms (900)",
    },
];

#[test]
fn each_bad_file_names_file_line_column_key_and_problem_without_calling_aws() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let mut failures = Vec::new();
    for case in CASES {
        let dir = tempfile::tempdir().unwrap();
        let text = TEMPLATE
            .replace("{endpoint}", &endpoint)
            .replace("{network}", case.network)
            + case.extra;
        std::fs::write(dir.path().join("bad.toml"), &text).unwrap();
        for command in ["validate", "plan", "deploy"] {
            let run = poolside_in(
                dir.path(),
                &[command, "--env", "bad", "--yes"][..if command == "deploy" { 4 } else { 3 }],
            );
            let stderr = run.stderr();
            let expected = [case.location, case.key, case.message];
            if run.code() != 1 || !expected.iter().all(|e| stderr.contains(e)) {
                failures.push(format!(
                    "{} ({command}): exit {}, expected {expected:?} in:\n{stderr}",
                    case.what,
                    run.code()
                ));
            }
        }
    }
    assert!(
        listener.accept().is_err(),
        "a bad file must not lead to any AWS call"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn an_unknown_environment_lists_the_ones_that_exist() {
    let dir = tempfile::tempdir().unwrap();
    let text = TEMPLATE
        .replace("{endpoint}", "http://127.0.0.1:9")
        .replace("{network}", GOOD_NETWORK);
    std::fs::write(
        dir.path().join("bad.toml"),
        text.replace("name = \"bad\"", "name = \"staging\""),
    )
    .unwrap();
    std::fs::write(dir.path().join("staging.toml"), "").unwrap();
    let run = poolside_in(dir.path(), &["plan", "--env", "prod"]);
    run.assert_code(1);
    assert!(
        run.stderr().contains("no environment named `prod`"),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr().contains("environments here: bad, staging"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_good_file_validates_without_aws() {
    let dir = tempfile::tempdir().unwrap();
    let text = TEMPLATE
        .replace("{endpoint}", "http://127.0.0.1:9")
        .replace("{network}", GOOD_NETWORK);
    std::fs::write(dir.path().join("bad.toml"), text).unwrap();
    let run = poolside_in(dir.path(), &["validate", "--env", "bad"]);
    run.assert_code(0);
    assert!(run.stdout().contains("VPC 10.0.0.0/16"), "{}", run.stdout());
}

/// Role settings that do nothing yet, or fail with some credentials, are
/// said by validate, which otherwise accepts them.
#[test]
fn validate_notes_role_settings_that_do_not_act_yet() {
    let dir = tempfile::tempdir().unwrap();
    let text = TEMPLATE
        .replace(
            "\"{endpoint}\"",
            "\"http://127.0.0.1:9\"\nexternal_id = \"acme-1234\"\nsession_duration = \"2h\"",
        )
        .replace("{network}", GOOD_NETWORK);
    std::fs::write(dir.path().join("bad.toml"), text).unwrap();
    let run = poolside_in(dir.path(), &["validate", "--env", "bad"]);
    run.assert_code(0);
    let err = run.stderr();
    assert!(
        err.contains("note: target.external_id is used by `poolside onboarding --env bad` only"),
        "{err}"
    );
    assert!(
        err.contains("note: target.session_duration is 2h: a role assumed from an assumed role"),
        "{err}"
    );
}

#[test]
fn the_shipped_environment_files_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("environments");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".toml").map(str::to_string)
        })
        .collect();
    for expected in [
        "local",
        "pilot",
        "limited",
        "full",
        "acme-pilot",
        "acme-in-vpc",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected}: {names:?}");
    }
    for name in &names {
        let run = poolside_in(&dir, &["validate", "--env", name]);
        run.assert_code(0);
    }
}

/// Limits AWS enforces fail validation, before any call (measured before:
/// 60 tags validated, then deploy failed with TagLimitExceeded after 54 calls;
/// a misspelt region made 54-80 calls before an unreadable parse error).
#[test]
fn limits_aws_enforces_are_checked_before_any_call() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let base = TEMPLATE
        .replace("{endpoint}", &endpoint)
        .replace("{network}", GOOD_NETWORK);
    let tags: String = (0..47).map(|i| format!("team{i} = \"x\"\n")).collect();
    let cases = [
        (
            base.replace("us-east-1", "eu-wset-1").replace(
                "\"eu-wset-1a\", \"eu-wset-1b\"",
                "\"eu-west-1a\", \"eu-west-1b\"",
            ),
            "`region`: \"eu-wset-1\" is not an AWS region; did you mean \"eu-west-1\"?",
        ),
        (
            format!("{base}\n[tags]\n{tags}"),
            "`tags`: 47 tags: AWS allows 50 per resource, and poolside adds up to 4 of its own",
        ),
    ];
    for (text, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.toml"), &text).unwrap();
        for command in ["validate", "deploy"] {
            let run = poolside_in(
                dir.path(),
                &[command, "--env", "bad", "--yes"][..if command == "deploy" { 4 } else { 3 }],
            );
            run.assert_code(1);
            assert!(
                run.stderr().contains(expected),
                "{command}: {}",
                run.stderr()
            );
        }
    }
    assert!(
        listener.accept().is_err(),
        "a file over AWS's limits must not lead to any AWS call"
    );
}

/// Every section's first problem at once, in human and JSON output; an
/// unknown key gets the closest known one.
#[test]
fn validate_reports_every_problem_at_once_and_suggests_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = TEMPLATE
        .replace("{endpoint}", "http://127.0.0.1:9")
        .replace("{network}", GOOD_NETWORK)
        + "\n[database]\nengine_version = \"12.5\"\n\n[api]\ndomain_name = \"https://api.example.com\"\n";
    std::fs::write(dir.path().join("bad.toml"), &text).unwrap();
    let human = poolside_in(dir.path(), &["validate", "--env", "bad"]);
    human.assert_code(1);
    let stderr = human.stderr();
    assert!(stderr.contains("`database.engine_version`"), "{stderr}");
    assert!(stderr.contains("`api.domain_name`"), "{stderr}");
    let json = poolside_in(
        dir.path(),
        &["validate", "--env", "bad", "--output", "json"],
    );
    let result = json.one("result");
    let error = result["error"].as_str().unwrap();
    assert!(
        error.contains("database.engine_version") && error.contains("api.domain_name"),
        "{error}"
    );

    let typo = TEMPLATE
        .replace("{endpoint}", "http://127.0.0.1:9")
        .replace(
            "{network}",
            &format!("{GOOD_NETWORK}\nnat_gatways = \"shared\""),
        );
    std::fs::write(dir.path().join("bad.toml"), &typo).unwrap();
    let run = poolside_in(dir.path(), &["validate", "--env", "bad"]);
    run.assert_code(1);
    assert!(
        run.stderr().contains("did you mean `nat_gateways`?"),
        "{}",
        run.stderr()
    );
}

/// A file saved in Latin-1: the error names the line and column of the
/// first byte that is not UTF-8, before any AWS call.
#[test]
fn a_file_that_is_not_utf8_is_named_with_the_place_of_its_first_bad_byte() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"name = \"latin\"\nregion = \"us-east-1\"\n# caf".to_vec();
    bytes.push(0xe9); // "é" in Latin-1
    bytes.extend_from_slice(b"\nphase = \"pilot\"\n");
    std::fs::write(dir.path().join("latin.toml"), bytes).unwrap();
    let run = poolside_in(dir.path(), &["validate", "--env", "latin"]);
    run.assert_code(1);
    assert!(
        run.stderr()
            .contains("latin.toml:3:6: the file is not UTF-8 text")
            && run.stderr().contains("0xe9"),
        "{}",
        run.stderr()
    );
}
