//! `poolside iam-policy`: every AWS operation that a deploy from empty, a
//! no-op deploy, a plan and a destroy really make (as `--stats` records them) is in the
//! policy, through the action IAM checks for it.

use crate::support::*;
use serde_json::Value;
use std::collections::BTreeSet;

fn operations(run: &Run) -> BTreeSet<String> {
    run.json("stats")
        .iter()
        .flat_map(|s| s["calls"]["operations"].as_array().unwrap().clone())
        .map(|op| {
            format!(
                "{} {}",
                op["service"].as_str().unwrap(),
                op["operation"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn the_policy_covers_every_operation_deploy_plan_and_destroy_make() {
    // With a hosted zone, so the certificate and DNS operations are made too.
    let mut env = Env::new("iam");
    let aws = aws().await;
    let zone = hosted_zone(&aws, &format!("{}.poolside.test", env.name)).await;
    env.api_extra = format!(
        "domain_name = \"api.{}.poolside.test\"\nhosted_zone_id = \"{zone}\"\n",
        env.name
    );
    env.write();
    let mut made = operations(&env.deploy());
    made.extend(operations(&env.deploy()));
    let plan = env.plan();
    plan.assert_code(0);
    made.extend(operations(&plan));
    assert!(made.len() > 60, "too few operations seen: {made:?}");

    // The policy is generated before the destroy: iam-policy reads the account
    // from STS, and the environment must still be what it describes.
    let run = env.poolside(&["iam-policy", "--env", &env.name, "--output", "json"]);
    run.assert_code(0);
    let destroyed = env.poolside(&[
        "destroy",
        "--env",
        &env.name,
        "--yes",
        "--delete-data",
        "--output",
        "json",
        "--stats",
    ]);
    destroyed.assert_code(0);
    made.extend(operations(&destroyed));
    let generated = run.one("iam_policy");
    let allowed: BTreeSet<&str> = generated["policy"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap())
        .map(|a| a.as_str().unwrap())
        .collect();
    for operation in &made {
        let action = generated["operations"][operation.as_str()].as_str();
        let Some(action) = action else {
            panic!("{operation} is made but not in the policy table (src/iam_policy.rs)");
        };
        assert!(
            allowed.contains(action),
            "{operation} needs {action}, which the policy does not allow"
        );
    }
    // Named resources are this environment's.
    let text = generated["policy"].to_string();
    assert!(text.contains(&format!("role/poolside-{}-*", env.name)));
    assert!(text.contains(&format!("hostedzone/{zone}")));
    for service in ["ACM ", "Route 53 "] {
        assert!(
            made.iter().any(|op| op.starts_with(service)),
            "no {service}operation was made: {made:?}"
        );
    }
}

// ---- the policy held to the resource of every call ----

/// IAM's wildcard match: `*` any run of characters, `?` one.
fn glob(pattern: &str, value: &str) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    let (mut pi, mut vi, mut star, mut mark) = (0, 0, None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::Bool(b) => vec![b.to_string()],
        _ => vec![],
    }
}

/// How a condition operator compares a wanted value with a present one.
type Comparison<'a> = &'a dyn Fn(&str, &str) -> bool;

/// One condition block, as IAM evaluates it against the request's context
/// (the operators the generated policy uses; any other fails the test).
fn condition_holds(condition: &Value, context: &Value) -> bool {
    let Some(operators) = condition.as_object() else {
        return true;
    };
    operators.iter().all(|(operator, keys)| {
        keys.as_object().unwrap().iter().all(|(key, wanted)| {
            let wanted = strings(wanted);
            let present = context.get(key).map(strings);
            let equals = |a: &str, b: &str| a == b;
            let like = |pattern: &str, value: &str| glob(pattern, value);
            let (set, test): (&str, Comparison) = match operator.as_str() {
                "StringEquals" | "ArnEquals" => ("", &equals),
                "ArnLike" => ("", &like),
                "StringLike" => ("", &like),
                "Bool" => ("", &equals),
                "ForAllValues:StringEquals" => ("all", &equals),
                "ForAllValues:StringLike" => ("all", &like),
                "ForAnyValue:StringEquals" => ("any", &equals),
                "ForAnyValue:StringLike" => ("any", &like),
                other => panic!("the test does not evaluate condition operator {other}"),
            };
            let matched = |value: &String| wanted.iter().any(|w| test(w, value));
            match (set, present) {
                // ForAllValues holds for a key the request does not have.
                ("all", None) => true,
                ("all", Some(values)) => values.iter().all(matched),
                (_, None) => false,
                (_, Some(values)) => values.iter().any(matched),
            }
        })
    })
}

/// Whether the policy's Allow statements allow `action` on `resource`.
pub(crate) fn allows(policy: &Value, action: &str, resource: &str, context: &Value) -> bool {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .any(|statement| {
            assert_eq!(
                statement["Effect"], "Allow",
                "the policy has only Allow statements"
            );
            strings(&statement["Action"])
                .iter()
                .any(|a| glob(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()))
                && strings(&statement["Resource"])
                    .iter()
                    .any(|r| glob(r, resource))
                && condition_holds(&statement["Condition"], context)
        })
}

#[test]
fn the_evaluator_matches_as_iam_does() {
    assert!(glob(
        "arn:aws:s3:::b/history/e/*",
        "arn:aws:s3:::b/history/e/1.json"
    ));
    assert!(!glob(
        "arn:aws:s3:::b/locks/e.json",
        "arn:aws:s3:::b/domains/e.json"
    ));
    assert!(glob("secret:rds!db-*", "secret:rds!db-0000-AbCdEf"));
    assert!(glob("a?c", "abc") && !glob("a?c", "ac"));
    let policy = serde_json::json!({ "Statement": [{
        "Effect": "Allow", "Action": ["route53:ChangeResourceRecordSets"], "Resource": ["arn:aws:route53:::hostedzone/Z1"],
        "Condition": { "ForAllValues:StringEquals": { "route53:ChangeResourceRecordSetsRecordTypes": ["A", "CNAME"] } }
    }, {
        "Effect": "Allow", "Action": ["iam:PassRole"], "Resource": ["arn:aws:iam::1:role/p-*"],
        "Condition": { "StringEquals": { "iam:PassedToService": ["ecs-tasks.amazonaws.com"] } }
    }]});
    let zone = "arn:aws:route53:::hostedzone/Z1";
    let types =
        |t: &[&str]| serde_json::json!({ "route53:ChangeResourceRecordSetsRecordTypes": t });
    assert!(allows(
        &policy,
        "route53:ChangeResourceRecordSets",
        zone,
        &types(&["A", "CNAME"])
    ));
    assert!(!allows(
        &policy,
        "route53:ChangeResourceRecordSets",
        zone,
        &types(&["MX"])
    ));
    assert!(!allows(
        &policy,
        "route53:ChangeResourceRecordSets",
        "arn:aws:route53:::hostedzone/Z2",
        &types(&["A"])
    ));
    let passed = |to: &str| serde_json::json!({ "iam:PassedToService": to });
    assert!(allows(
        &policy,
        "iam:PassRole",
        "arn:aws:iam::1:role/p-task",
        &passed("ecs-tasks.amazonaws.com")
    ));
    assert!(!allows(
        &policy,
        "iam:PassRole",
        "arn:aws:iam::1:role/p-task",
        &passed("lambda.amazonaws.com")
    ));
    assert!(!allows(
        &policy,
        "iam:PassRole",
        "arn:aws:iam::1:role/p-task",
        &serde_json::json!({})
    ));
}

/// Every call of a deploy from empty, a no-op deploy, plan, drift, status
/// and destroy, read through the realistic proxy as IAM authorizes it (the
/// action and the ARN of the resource it acts on, as the Service
/// Authorization Reference defines them, and what AWS checks on the
/// caller's behalf), is allowed by what `iam-policy` generates. Before,
/// the test compared action names on moto, which enforces nothing.
#[tokio::test]
async fn the_policy_allows_every_call_on_the_resource_it_acts_on() {
    let proxy = crate::real_aws::Proxy::start();
    let aws = aws().await;
    let mut env = Env::new("iamarn");
    env.endpoint = proxy.url.clone();
    let zone = hosted_zone(&aws, &format!("{}.poolside.test", env.name)).await;
    env.api_extra = format!(
        "domain_name = \"api.{}.poolside.test\"\nhosted_zone_id = \"{zone}\"\nmax_count = 3\n",
        env.name
    );
    env.write();
    env.deploy();
    env.deploy();
    env.plan().assert_code(0);
    env.poolside(&["drift", "--env", &env.name, "--output", "json"]);
    env.poolside(&["status", "--env", &env.name, "--output", "json"]);
    let generated = env.poolside(&["iam-policy", "--env", &env.name, "--output", "json"]);
    generated.assert_code(0);
    let policy = generated.one("iam_policy")["policy"].clone();
    env.poolside(&["destroy", "--env", &env.name, "--yes", "--delete-data"])
        .assert_code(0);

    let seen = proxy.authorizations().await;
    assert!(seen.len() > 100, "too few calls seen: {}", seen.len());
    assert_every_call_allowed(&seen, &[policy]);
}

/// Fails naming every call the table does not know and every call that no
/// policy of `policies` allows on its resource.
pub(crate) fn assert_every_call_allowed(seen: &[Value], policies: &[Value]) {
    let mut unknown = std::collections::BTreeSet::new();
    let mut denied = std::collections::BTreeSet::new();
    for a in seen {
        let call = a["call"].as_str().unwrap_or("?");
        if a["unknown"].as_bool() == Some(true) {
            unknown.insert(format!(
                "{call} ({})",
                a["error"]
                    .as_str()
                    .unwrap_or("not in tests/aws_authorization.py")
            ));
            continue;
        }
        if a["always_allowed"].as_bool() == Some(true) {
            continue; // AWS documents that it needs no permission
        }
        let (action, resource) = (
            a["action"].as_str().unwrap(),
            a["resource"].as_str().unwrap(),
        );
        // `any_of`: AWS accepts any one of these actions. An authorization
        // AWS makes only in some circumstance (`only_if`) or that the
        // documentation leaves unclear (`unverified`) is held to the policy
        // all the same: the policy must not fail where AWS might ask.
        let actions: Vec<String> = match a["any_of"].as_array() {
            Some(any) => any
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect(),
            None => vec![action.to_string()],
        };
        let allowed = policies.iter().any(|policy| {
            actions
                .iter()
                .any(|action| allows(policy, action, resource, &a["context"]))
        });
        if !allowed {
            let why = a["only_if"]
                .as_str()
                .or(a["unverified"].as_str())
                .map(|w| format!(" [{w}]"))
                .unwrap_or_default();
            denied.insert(format!(
                "{call}: {action} on {resource} (context {}){why}",
                a["context"]
            ));
        }
    }
    assert!(
        unknown.is_empty(),
        "calls the authorization table does not know:\n{}",
        unknown.into_iter().collect::<Vec<_>>().join("\n")
    );
    assert!(
        denied.is_empty(),
        "denied by `poolside iam-policy`:\n{}",
        denied.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// A release promotion (`promote --from SRC --to DST`), read through the
/// proxy as IAM authorizes it, is allowed by the two environments'
/// policies: an operator who promotes runs both. DST's policy alone covers
/// the copy from SRC's repository (its `PromotionSources` statement).
#[tokio::test]
async fn the_policies_allow_every_call_of_a_release_promotion() {
    let proxy = crate::real_aws::Proxy::start();
    let aws = aws().await;
    let mut source = Env::new("iamsrc");
    source.endpoint = proxy.url.clone();
    source.write();
    let mut target = Env::new("iamdst");
    target.endpoint = proxy.url.clone();
    target.api_extra = "image_tag = \"v12.0.1\"\n".into();
    target.write();
    let staged = source.deploy();
    target.deploy();
    crate::promote::push_stand_in_image(&aws, &staged, 'b').await;
    std::fs::copy(
        source.file(),
        target.dir().join(format!("{}.toml", source.name)),
    )
    .unwrap();
    let policy_of = |env: &Env, name: &str| {
        let run = env.poolside(&["iam-policy", "--env", name, "--output", "json"]);
        run.assert_code(0);
        run.one("iam_policy")["policy"].clone()
    };
    let policies = [
        policy_of(&target, &target.name),
        policy_of(&target, &source.name),
    ];
    let before = proxy.authorizations().await.len();
    std::thread::sleep(std::time::Duration::from_secs(2));
    target
        .poolside(&[
            "promote",
            "--from",
            &source.name,
            "--to",
            &target.name,
            "--bake",
            "1s",
            "--yes",
        ])
        .assert_code(0);
    let seen = proxy.authorizations().await.split_off(before);
    let copied: Vec<&Value> = seen
        .iter()
        .filter(|a| a["action"] == "ecr:BatchGetImage")
        .collect();
    assert!(!copied.is_empty(), "the promotion read no image: {seen:?}");
    assert_every_call_allowed(&seen, &policies);
    // The target's policy alone lets it read the source's repository.
    for a in copied {
        assert!(
            allows(
                &policies[0],
                "ecr:BatchGetImage",
                a["resource"].as_str().unwrap(),
                &a["context"]
            ),
            "{a}"
        );
    }
}
