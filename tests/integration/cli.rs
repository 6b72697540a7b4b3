//! The conventions of a command-line tool: version, pipes, streams, short flags.

use crate::support::*;
use std::process::Command;

#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = Command::new(env!("CARGO_BIN_EXE_poolside"))
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let commit = text
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(commit, _)| commit.trim_end_matches("+dirty").to_string())
        .unwrap_or_default();
    assert!(
        commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit()),
        "{text}"
    );
}

#[test]
fn a_plan_piped_into_a_closed_pipe_ends_quietly_and_warnings_stay_off_stdout() {
    let env = Env::new("pipe");
    env.write();
    let script = format!(
        "{bin} --environments-dir {dir} plan --env {name} | true",
        bin = env!("CARGO_BIN_EXE_poolside"),
        dir = env.dir().display(),
        name = env.name
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");

    let run = env.poolside(&["plan", "--env", &env.name]);
    run.assert_code(0);
    // No certificate: the plain-HTTP warning goes to stderr, not stdout.
    assert!(run
        .stderr()
        .contains("warning: api.certificate_arn is not set"));
    assert!(!run.stdout().contains("warning:"), "{}", run.stdout());
}

#[test]
fn y_is_short_for_yes() {
    let env = Env::new("short");
    env.write();
    let run = env.poolside(&["deploy", "--env", "no-such-environment", "-y"]);
    run.assert_code(1);
    assert!(
        run.stderr()
            .contains("no environment named `no-such-environment`"),
        "{}",
        run.stderr()
    );
}

/// On an emulator, `image push` registers the stand-in image (its ECR
/// keeps no layers), so a release promotion can be tried on the local stack.
#[test]
fn image_push_on_an_emulator_registers_a_stand_in_that_a_release_promotion_moves() {
    let source = Env::new("push");
    source.write();
    source.deploy();
    let pushed = source.poolside(&["image", "push", "--env", &source.name]);
    pushed.assert_code(0);
    assert!(
        pushed.stdout().contains("Registered"),
        "{}",
        pushed.stdout()
    );
    let again = source.poolside(&["image", "push", "--env", &source.name]);
    again.assert_code(0);
    assert!(
        again.stdout().contains("already in the repository"),
        "{}",
        again.stdout()
    );

    let mut target = Env::new("pushto");
    target.api_extra = "image_tag = \"v12.0.1\"\n".into();
    target.write();
    target.deploy();
    std::fs::copy(
        source.file(),
        target.dir().join(format!("{}.toml", source.name)),
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let promoted = target.poolside(&[
        "promote",
        "--from",
        &source.name,
        "--to",
        &target.name,
        "--bake",
        "1s",
        "--yes",
    ]);
    promoted.assert_code(0);
    let text = std::fs::read_to_string(target.file()).unwrap();
    assert!(text.contains("image_tag = \"v12.0.2\""), "{text}");
}

#[test]
fn json_runs_end_with_one_result_line_also_for_a_bad_file() {
    let env = Env::new("json");
    env.write();
    let plan = env.plan();
    plan.assert_code(2);
    assert_eq!(plan.one("result")["status"], "changes");
    let text = std::fs::read_to_string(env.file())
        .unwrap()
        .replace("phase = \"pilot\"", "phase = \"pilto\"");
    std::fs::write(env.file(), text).unwrap();
    let run = env.poolside(&["validate", "--env", &env.name, "--output", "json"]);
    run.assert_code(1);
    let result = run.one("result");
    assert_eq!(result["command"], "validate");
    assert_eq!(result["status"], "error");
    assert!(
        result["error"].as_str().unwrap().contains("phase"),
        "{result}"
    );
    assert_eq!(run.stdout().lines().count(), 1, "{}", run.stdout());
}

#[test]
fn completions_and_the_manual_page_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(env!("CARGO_BIN_EXE_poolside"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        for command in ["deploy", "plan", "iam-policy", "outputs"] {
            assert!(
                script.contains(command),
                "{shell} completion lacks {command}"
            );
        }
    }
    let man = Command::new(env!("CARGO_BIN_EXE_poolside"))
        .arg("man")
        .output()
        .unwrap();
    assert!(man.status.success());
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(page.contains(".TH poolside 1"), "{page}");
    // One page: it names no page of its own per command.
    assert!(!page.contains("poolside-plan(1)"), "{page}");
    for section in [
        ".SH COMMANDS",
        ".SH \"EXIT STATUS\"",
        ".SH ENVIRONMENT",
        ".SH EXAMPLES",
    ] {
        assert!(page.contains(section), "{section} in {page}");
    }
    assert!(page.contains("poolside plan \\-\\-env"), "{page}");

    // Each command's help ends with an example.
    for command in [
        "plan", "deploy", "destroy", "drift", "promote", "status", "envs",
    ] {
        let help = Command::new(env!("CARGO_BIN_EXE_poolside"))
            .args([command, "--help"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(
            text.contains(&format!("Example:\n  poolside {command}")),
            "{command}: {text}"
        );
    }

    // bash completes --env with the directory's environment names.
    let dir = tempfile::tempdir().unwrap();
    for name in ["acme-pilot", "acme-prod"] {
        std::fs::write(dir.path().join(format!("{name}.toml")), "").unwrap();
    }
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_poolside"))
        .parent()
        .unwrap();
    let completed = Command::new("bash")
        .arg("-c")
        .arg(
            "source <(poolside completions bash); \
             COMP_WORDS=(poolside --environments-dir \"$1\" plan --env acme-p); COMP_CWORD=5; \
             _poolside_with_environments; echo \"${COMPREPLY[@]}\"",
        )
        .arg("bash")
        .arg(dir.path())
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&completed.stdout).trim(),
        "acme-pilot acme-prod",
        "{}",
        String::from_utf8_lossy(&completed.stderr)
    );
    // zsh too, where it is installed: its completer offers the same names
    // (compsys's own functions stubbed, to run without a terminal).
    if Command::new("zsh").arg("-c").arg("true").output().is_ok() {
        let completed = Command::new("zsh")
            .arg("-c")
            .arg(
                "compdef() {}; _describe() { print -l -- ${(P)2} }; \
                 source <(poolside completions zsh); \
                 typeset -A opt_args; opt_args=(--environments-dir \"$1\"); \
                 _poolside_environments",
            )
            .arg("zsh")
            .arg(dir.path())
            .env(
                "PATH",
                format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
            )
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&completed.stdout).trim(),
            "acme-pilot\nacme-prod",
            "{}",
            String::from_utf8_lossy(&completed.stderr)
        );
    }
}

#[test]
fn outputs_of_a_deployed_environment_one_alone_for_scripts() {
    let env = Env::new("outs");
    env.write();
    // A limit of no runs is a usage error, not one run.
    let none = env.poolside(&["history", "--env", &env.name, "--limit", "0"]);
    none.assert_code(1);
    assert!(none.stderr().contains("--limit"), "{}", none.stderr());
    // Before the first deploy (as after a destroy) each command says so alike.
    for command in ["outputs", "status", "drift"] {
        let not_yet = env.poolside(&[command, "--env", &env.name]);
        not_yet.assert_code(1);
        assert!(
            not_yet.stderr().contains("is not deployed"),
            "{command}: {}",
            not_yet.stderr()
        );
        assert!(
            !not_yet.stdout().contains("exists"),
            "{command}: {}",
            not_yet.stdout()
        );
    }

    let deployed = env.deploy().one("outputs");
    let run = env.poolside(&["outputs", "--env", &env.name, "api_url"]);
    run.assert_code(0);
    assert_eq!(run.stdout().trim(), deployed["api_url"].as_str().unwrap());
    let all = env.poolside(&["outputs", "--env", &env.name, "--output", "json"]);
    all.assert_code(0);
    assert_eq!(all.one("outputs")["vpc_id"], deployed["vpc_id"]);
    let unknown = env.poolside(&["outputs", "--env", &env.name, "api_uri"]);
    unknown.assert_code(1);
    assert!(
        unknown
            .stderr()
            .contains("there is no output named `api_uri`"),
        "{}",
        unknown.stderr()
    );
    assert!(unknown.stderr().contains("api_url"));
}

#[test]
fn an_endpoint_where_nothing_listens_names_the_cause_without_sdk_internals() {
    let env = Env::new("nothing");
    env.write();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let text = std::fs::read_to_string(env.file())
        .unwrap()
        .replace(&endpoint(), &format!("http://127.0.0.1:{port}"));
    std::fs::write(env.file(), text).unwrap();
    let run = env.poolside(&["plan", "--env", &env.name]);
    run.assert_code(1);
    let stderr = run.stderr();
    assert!(stderr.contains("is the local stack running?"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot reach the AWS endpoint http://127.0.0.1:{port} (Connection refused"
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("SdkBody") && !stderr.contains("DispatchFailure"),
        "{stderr}"
    );
}

/// Measured before: the second environment's PostgREST could not bind, yet
/// deploy reported the first environment's API as its own.
#[test]
fn a_local_port_taken_by_another_environment_is_refused_and_named() {
    let first = Env::new("porta");
    first.write();
    first.deploy();
    let mut second = Env::new("portb");
    second.api_port = first.api_port;
    second.write();
    let run = second.poolside(&["deploy", "--env", &second.name, "--yes"]);
    run.assert_code(1);
    let stderr = run.stderr();
    assert!(
        stderr.contains(&format!(
            "port {} is in use by environment `{}`'s PostgREST",
            first.api_port, first.name
        )),
        "{stderr}"
    );
    assert!(
        !run.stdout().contains("answered \"hello world\""),
        "{}",
        run.stdout()
    );

    // validate says so before anything runs, for files in one directory.
    std::fs::copy(
        second.file(),
        first.dir().join(format!("{}.toml", second.name)),
    )
    .unwrap();
    let validate = first.poolside(&["validate", "--env", &second.name]);
    validate.assert_code(0);
    assert!(
        validate.stderr().contains(&format!(
            "{}.toml also runs its local PostgREST on port {}",
            first.name, first.api_port
        )),
        "{}",
        validate.stderr()
    );
}

/// Two stacks (emulator endpoints) may each have an environment of one
/// name: a deploy on one never stops the other's local PostgREST.
#[tokio::test]
async fn an_environment_of_the_same_name_on_another_stack_keeps_its_own_local_api() {
    let first = Env::new("stack");
    first.write();
    let deployed = first.deploy();
    let first_url = deployed.one("local_api")["url"]
        .as_str()
        .unwrap()
        .to_string();

    // The same emulator by another name is another stack to poolside.
    let other_endpoint = first.endpoint.replace("127.0.0.1", "localhost");
    assert_ne!(other_endpoint, first.endpoint);
    let other_port = free_port_pair();
    let text = std::fs::read_to_string(first.file())
        .unwrap()
        .replace(&first.endpoint, &other_endpoint)
        .replace(
            &format!("local_port = {}", first.api_port),
            &format!("local_port = {other_port}"),
        );
    let other_dir = tempfile::tempdir().unwrap();
    std::fs::write(other_dir.path().join(format!("{}.toml", first.name)), text).unwrap();
    let other = poolside_in(
        other_dir.path(),
        &["deploy", "--env", &first.name, "--yes", "--output", "json"],
    );
    let other_pid = std::fs::read_to_string(local_api_pid_file(&first.name, &other_endpoint));
    if let Ok(pid) = &other_pid {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid.trim().parse().unwrap()),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    other.assert_code(0);
    assert_eq!(
        other.one("local_api")["action"],
        "started",
        "{}",
        other.stdout()
    );
    assert!(
        other_pid.is_ok(),
        "the other stack's server has its own pid file"
    );

    let hello = reqwest::get(format!("{first_url}/rpc/hello")).await;
    assert!(
        hello.is_ok_and(|r| r.status().is_success()),
        "the first stack's local API went down"
    );
}

/// `--compact` lists what a plan creates by id alone.
#[test]
fn a_compact_plan_lists_creates_without_their_properties() {
    let env = Env::new("compact");
    env.write();
    let full = env.poolside(&["plan", "--env", &env.name]);
    let compact = env.poolside(&["plan", "--env", &env.name, "--compact"]);
    compact.assert_code(0);
    let (full, compact) = (full.stdout(), compact.stdout());
    assert!(compact.contains("+ vpc/main"), "{compact}");
    assert!(compact.contains("Plan: "), "{compact}");
    assert!(!compact.contains("dns_hostnames"), "{compact}");
    assert!(full.contains("dns_hostnames"), "{full}");
    assert!(
        compact.lines().count() * 3 < full.lines().count(),
        "{compact}"
    );
}

#[test]
fn plan_symbols_are_coloured_only_when_asked_or_on_a_terminal() {
    let env = Env::new("colour");
    env.write();
    let coloured = env.poolside(&["plan", "--env", &env.name, "--color", "always"]);
    coloured.assert_code(0);
    assert!(
        coloured.stdout().contains("\u{1b}[") && coloured.stdout().contains("+ vpc/main"),
        "{}",
        coloured.stdout()
    );
    // Piped (not a terminal), NO_COLOR, or never: plain text.
    let piped = env.poolside(&["plan", "--env", &env.name]);
    let no_color = poolside_with(
        env.dir(),
        &["plan", "--env", &env.name],
        &[("NO_COLOR", "1")],
    );
    let never = env.poolside(&["plan", "--env", &env.name, "--color", "never"]);
    for run in [piped, no_color, never] {
        run.assert_code(0);
        assert!(!run.stdout().contains('\u{1b}'), "{}", run.stdout());
        assert!(run.stdout().contains("  +   vpc/main") || run.stdout().contains("+ vpc/main"));
    }
}

#[test]
fn a_missing_environments_directory_is_named() {
    let run = poolside_in(
        std::path::Path::new("/nonexistent/environments"),
        &["validate", "--env", "pilot"],
    );
    run.assert_code(1);
    assert!(
        run.stderr()
            .contains("the environments directory /nonexistent/environments does not exist"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_human_deploy_ends_its_apply_with_a_summary_and_the_new_revision() {
    let mut env = Env::new("summary");
    env.write();
    let first = env.poolside(&["deploy", "--env", &env.name, "--yes"]);
    first.assert_code(0);
    assert!(
        first.stdout().contains("Apply complete: ")
            && first
                .stdout()
                .contains(" created, 0 updated, 0 replaced, 0 deleted."),
        "{}",
        first.stdout()
    );
    env.api_extra = "image_tag = \"v12.0.3\"\n".into();
    env.write();
    let second = env.poolside(&["deploy", "--env", &env.name, "--yes", "--output", "json"]);
    second.assert_code(0);
    let updated = second
        .json("event")
        .into_iter()
        .find(|e| e["event"] == "step_succeeded" && e["id"] == "task-definition/api")
        .expect("the task definition was updated");
    assert!(
        updated["physical_id"].as_str().unwrap().ends_with(":2"),
        "the update reports the revision it registered: {updated}"
    );
}

/// On a terminal (a pseudo-terminal from util-linux `script`): a spinner says
/// what discovery is doing, and no empty progress bar is left on screen
/// while the schema step runs (a bar lives only while an apply does).
/// "no" at deploy's prompt (on a terminal) changes nothing and is recorded
/// as cancelled, not as an error.
#[test]
fn a_no_at_the_prompt_is_recorded_as_cancelled() {
    use std::io::Write as _;
    let env = Env::new("cancel");
    env.write();
    let command = format!(
        "{} --environments-dir {} deploy --env {}",
        env!("CARGO_BIN_EXE_poolside"),
        env.dir().display(),
        env.name
    );
    let mut script = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    script.stdin.take().unwrap().write_all(b"no\n").unwrap();
    let out = script.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Only 'yes' is accepted"), "{text}");
    assert!(
        text.contains("deploy cancelled: nothing was changed"),
        "{text}"
    );
    let history = env.poolside(&[
        "history", "--env", &env.name, "--output", "json", "--limit", "1",
    ]);
    let run = history.one("run");
    assert_eq!(run["result"], "cancelled", "{run}");
    assert_eq!(run["plan"]["summary"]["create"], 0, "{run}");
}

#[test]
fn on_a_terminal_discovery_shows_a_spinner_and_no_empty_bar_is_left() {
    let env = Env::new("tty");
    env.write();
    let command = format!(
        "{} --environments-dir {} deploy --env {} --yes",
        env!("CARGO_BIN_EXE_poolside"),
        env.dir().display(),
        env.name
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script (util-linux) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("Discovering environment `{}`", env.name)),
        "{text}"
    );
    assert!(text.contains("Apply complete"), "{text}");
    assert!(!text.contains(" 0/0"), "an empty bar was drawn: {text}");
    // A no-op deploy applies nothing: no bar at all.
    let again = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(text.contains("No changes"), "{text}");
    assert!(!text.contains("/0 "), "{text}");
}
