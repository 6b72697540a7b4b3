//! `poolside token`: an API token for a developer's IDE, signed with the
//! environment's JWT secret (read from Secrets Manager, never printed). The
//! token is the only thing on stdout, so `$(poolside token ...)` just works.

use super::globals::{exit, Globals};
use crate::names::{secret_name, JWT_SECRET};
use crate::ops::Session;
use crate::resources::secrets;
use anyhow::{anyhow, bail, Context as _};
use serde::Serialize;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment whose API the token is for.
    #[arg(long, value_parser = super::globals::environment_name)]
    pub env: String,
    /// The database role the API switches to for this token.
    #[arg(long, value_parser = ["api_user"])]
    pub role: String,
    /// How long the token is valid: a number and a unit (s, m, h, d), e.g. 30d. At most 365d.
    #[arg(long, value_parser = parse_ttl)]
    pub ttl: Duration,
    /// Who the token is for (the `sub` claim; rows they write carry it). Default: $USER.
    #[arg(long)]
    pub subject: Option<String>,
}

/// The claims PostgREST reads (`role`) and the ones people read when auditing.
#[derive(Debug, Serialize)]
struct Claims<'a> {
    role: &'a str,
    sub: &'a str,
    iss: &'static str,
    env: &'a str,
    iat: u64,
    exp: u64,
}

pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} needs a unit: s, m, h or d (e.g. 30d)"))?;
    let (number, unit) = text.split_at(unit_at);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a number"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    let ttl = Duration::from_secs(number.saturating_mul(seconds));
    if ttl < Duration::from_secs(60) || ttl > Duration::from_secs(365 * 86_400) {
        return Err(format!("{text:?} must be between 1 minute and 365 days"));
    }
    Ok(ttl)
}

fn default_subject() -> anyhow::Result<String> {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            anyhow!("no --subject given and $USER is not set: name who the token is for")
        })
}

pub async fn exec(globals: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let config = globals.load(&args.env)?;
    let subject = match args.subject {
        Some(subject) => subject,
        None => default_subject()?,
    };
    if subject.is_empty() || subject.len() > 200 || subject.chars().any(char::is_control) {
        bail!("--subject must be 1-200 printable characters");
    }
    let session = Session::open(config).await?;
    let name = secret_name(&session.config, JWT_SECRET);
    let key = secrets::read_value(&session.cx, &name)
        .await
        .with_context(|| {
            format!(
                "reading the JWT secret {name} (has `poolside deploy --env {}` run?)",
                args.env
            )
        })?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = Claims {
        role: &args.role,
        sub: &subject,
        iss: "poolside",
        env: &args.env,
        iat: now,
        exp: now + args.ttl.as_secs(),
    };
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
    .context("signing the token")?;
    println!("{token}");
    Ok(ExitCode::from(exit::OK))
}

#[cfg(test)]
mod tests {
    use super::parse_ttl;
    use std::time::Duration;

    #[test]
    fn ttl_takes_a_number_and_a_unit_within_bounds() {
        assert_eq!(parse_ttl("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_ttl("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_ttl("90m"), Ok(Duration::from_secs(90 * 60)));
        assert!(parse_ttl("30").unwrap_err().contains("needs a unit"));
        assert!(parse_ttl("30w").unwrap_err().contains("unit must be"));
        assert!(parse_ttl("10s")
            .unwrap_err()
            .contains("between 1 minute and 365 days"));
        assert!(parse_ttl("400d")
            .unwrap_err()
            .contains("between 1 minute and 365 days"));
    }
}
