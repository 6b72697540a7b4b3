//! `poolside token`: a JWT signed with the environment's secret, alone on stdout.

use crate::support::{aws, Env};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn a_token_is_signed_with_the_environments_secret_and_carries_role_subject_and_expiry() {
    let env = Env::new("token");
    env.write();
    env.deploy();
    let run = env.poolside(&[
        "token",
        "--env",
        &env.name,
        "--role",
        "api_user",
        "--ttl",
        "2h",
        "--subject",
        "alice",
    ]);
    run.assert_code(0);
    let stdout = run.stdout();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "only the token goes to stdout: {stdout}");
    let token = lines[0];

    let secret = aws()
        .await
        .secrets
        .get_secret_value()
        .secret_id(format!("poolside/{}/jwt", env.name))
        .send()
        .await
        .unwrap()
        .secret_string()
        .unwrap()
        .to_string();
    assert!(!stdout.contains(&secret) && !run.stderr().contains(&secret));
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.validate_aud = false;
    let claims: Value = jsonwebtoken::decode(
        token,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .expect("the token verifies with the environment's secret")
    .claims;
    assert_eq!(claims["role"], "api_user");
    assert_eq!(claims["sub"], "alice");
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 2 * 3600);

    // Signed with another key, it does not verify.
    let wrong = jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(b"another-key-of-sufficient-length-0123456789"),
        &validation,
    );
    assert!(wrong.is_err());
}

#[test]
fn a_bad_ttl_or_role_is_refused_before_any_aws_call() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (
            ["--ttl", "30w", "--role", "api_user"],
            "the unit must be s, m, h or d",
        ),
        (
            ["--ttl", "30d", "--role", "postgres"],
            "invalid value 'postgres' for '--role",
        ),
    ] {
        let mut all = vec!["token", "--env", "nowhere"];
        all.extend(args);
        let run = crate::support::poolside_in(dir.path(), &all);
        run.assert_code(1);
        assert!(run.stderr().contains(expected), "{}", run.stderr());
    }
}
