//! `poolside completions` and `poolside man`: shell completion scripts and
//! the manual page, generated from the command line `cli/mod.rs` defines.
//! No AWS call.

use super::globals::exit;
use std::io::Write as _;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// bash, zsh or fish (these also complete environment names after --env,
    /// --from and --to), elvish or powershell (commands and flags only).
    pub shell: clap_complete::Shell,
}

/// Prints the completion script for a shell, e.g.
/// `poolside completions bash > /etc/bash_completion.d/poolside`. In bash,
/// zsh and fish, `--env`, `--from` and `--to` complete the environment names
/// of the directory (`poolside envs --names`); other shells complete words.
/// `command`: poolside's whole command line, from `cli/mod.rs`.
pub fn completions(args: CompletionsArgs, mut command: clap::Command) -> anyhow::Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "poolside", &mut script);
    let mut out = std::io::stdout().lock();
    if args.shell != clap_complete::Shell::Zsh {
        out.write_all(&script)?;
    }
    match args.shell {
        clap_complete::Shell::Bash => out.write_all(BASH_ENVIRONMENTS.as_bytes())?,
        clap_complete::Shell::Fish => out.write_all(FISH_ENVIRONMENTS.as_bytes())?,
        clap_complete::Shell::Zsh => {
            let text = String::from_utf8(script)?;
            out.write_all(with_zsh_environments(&text).as_bytes())?;
            return Ok(ExitCode::from(exit::OK));
        }
        _ => {}
    }
    Ok(ExitCode::from(exit::OK))
}

/// Environment names for `--env`/`--from`/`--to`, then clap's completion.
const BASH_ENVIRONMENTS: &str = r#"
_poolside_with_environments() {
    local previous="${COMP_WORDS[COMP_CWORD-1]}"
    case "$previous" in
        --env|--from|--to)
            local dir="" i
            for ((i = 1; i < COMP_CWORD; i++)); do
                [ "${COMP_WORDS[i]}" = "--environments-dir" ] && dir="${COMP_WORDS[i+1]}"
            done
            local words
            words="$(poolside ${dir:+--environments-dir "$dir"} envs --names 2>/dev/null)"
            [ "$previous" = "--to" ] && words="$words limited full"
            COMPREPLY=($(compgen -W "$words" -- "${COMP_WORDS[COMP_CWORD]}"))
            return 0
            ;;
    esac
    _poolside "$@"
}
complete -F _poolside_with_environments -o nosort -o bashdefault -o default poolside
"#;

/// clap's zsh script with `--env`/`--from`/`--to` completed from the
/// directory's environment names (defined before the script's last lines,
/// which run the completion).
fn with_zsh_environments(script: &str) -> String {
    let script = script
        .replace(":ENV:_default'", ":ENV:_poolside_environments'")
        .replace(":FROM:_default'", ":FROM:_poolside_environments'")
        .replace(":TO:_default'", ":TO:_poolside_environments_or_phases'");
    match script.rfind("if [ \"$funcstack[1]\" = \"_poolside\" ]") {
        Some(at) => format!("{}{ZSH_ENVIRONMENTS}\n{}", &script[..at], &script[at..]),
        None => script,
    }
}

const ZSH_ENVIRONMENTS: &str = r#"_poolside_environments() {
    local -a environments directory
    [[ -n ${opt_args[--environments-dir]} ]] && directory=(--environments-dir ${opt_args[--environments-dir]})
    environments=(${(f)"$(poolside $directory envs --names 2>/dev/null)"})
    _describe 'environment' environments
}
_poolside_environments_or_phases() {
    local -a phases
    phases=(limited full)
    _poolside_environments
    _describe 'phase' phases
}
"#;

const FISH_ENVIRONMENTS: &str = r#"
complete -c poolside -l env -x -a '(poolside envs --names 2>/dev/null)'
complete -c poolside -l from -x -a '(poolside envs --names 2>/dev/null)'
complete -c poolside -l to -x -a '(poolside envs --names 2>/dev/null; echo limited; echo full)'
"#;

/// Prints the manual page (roff), e.g. `poolside man > poolside.1`: one
/// page with every command (none of its own), what the exit codes mean, the
/// environment variables read, and examples.
pub fn man(command: clap::Command) -> anyhow::Result<ExitCode> {
    let page = clap_mangen::Man::new(command.clone());
    let mut out = std::io::stdout().lock();
    page.render_title(&mut out)?;
    page.render_name_section(&mut out)?;
    page.render_synopsis_section(&mut out)?;
    page.render_description_section(&mut out)?;
    page.render_options_section(&mut out)?;
    writeln!(out, ".SH COMMANDS")?;
    for sub in command.get_subcommands() {
        writeln!(out, ".TP\n\\fBpoolside {}\\fR", roff(sub.get_name()))?;
        writeln!(
            out,
            "{}",
            roff(&sub.get_about().map(|a| a.to_string()).unwrap_or_default())
        )?;
        let options: Vec<String> = sub
            .get_arguments()
            .filter(|a| !a.is_global_set() && a.get_id() != "help")
            .map(|a| match (a.get_long(), a.get_short()) {
                (Some(long), _) => format!("\\-\\-{}", roff(long)),
                (None, Some(short)) => format!("\\-{short}"),
                (None, None) => roff(&a.get_id().to_string().to_uppercase()),
            })
            .collect();
        if !options.is_empty() {
            writeln!(out, ".br\nOptions: {}", options.join(", "))?;
        }
    }
    writeln!(out, "{}", EXIT_STATUS)?;
    writeln!(out, "{}", ENVIRONMENT)?;
    writeln!(out, ".SH EXAMPLES")?;
    for sub in command.get_subcommands() {
        let Some(help) = sub.get_after_help() else {
            continue;
        };
        for line in help.to_string().lines().skip(1) {
            writeln!(out, ".nf\n{}\n.fi", roff(line.trim()))?;
        }
    }
    page.render_version_section(&mut out)?;
    Ok(ExitCode::from(exit::OK))
}

/// Text as roff shows it: backslashes and hyphens escaped, no line read as
/// a request.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    match escaped.chars().next() {
        Some('.' | '\'') => format!("\\&{escaped}"),
        _ => escaped,
    }
}

const EXIT_STATUS: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
Success; for plan \-\-detailed\-exitcode and drift, nothing to change.
.TP
\fB1\fR
An error: a bad environment file (every problem named), a refusal (data guard, gates, lock), a failed step or verification.
.TP
\fB2\fR
Changes or drift found (plan \-\-detailed\-exitcode, drift).
.TP
\fB130\fR
Interrupted (Ctrl\-C); run the command again to finish."#;

const ENVIRONMENT: &str = r#".SH ENVIRONMENT
.TP
\fBPOOLSIDE_ENVIRONMENTS_DIR\fR
Where environment files live (\-\-environments\-dir; default environments).
.TP
\fBAWS_PROFILE\fR, \fBAWS_REGION\fR, \fBAWS_ACCESS_KEY_ID\fR, ...
The AWS SDK's default credential chain, for files without target.endpoint_url.
.TP
\fBPOOLSIDE_LOG\fR
A tracing filter for the log on stderr (\-v, \-vv, \-vvv set one).
.TP
\fBPOOLSIDE_LOCK_LEASE\fR
The lock's lease (default 120s).
.TP
\fBPOOLSIDE_HOME\fR
Where the local stack lives (default ~/.local/share/poolside).
.TP
\fBPOOLSIDE_POSTGREST\fR
The PostgREST binary that stands in for the ECS tasks on an emulator.
.TP
\fBREGISTRY_AUTH_FILE\fR, \fBDOCKER_CONFIG\fR
Registry logins for image push (else ~/.docker/config.json).
.TP
\fBNO_COLOR\fR
No colour with \-\-color auto."#;
