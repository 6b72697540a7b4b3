//! Onboarding a customer's account as it happens: the engineer prints the
//! template, the customer's administrator creates the stack (moto runs
//! CloudFormation), and every command after acts as the role it made.

use crate::iam_policy::assert_every_call_allowed;
use crate::support::*;
use serde_json::Value;

/// moto's default account: the customer's and the engineers' here.
const ACCOUNT: &str = "123456789012";

/// One CloudFormation call (Query protocol) to the emulator, as the
/// customer's administrator would make it, answered in XML.
async fn cloudformation(form: &[(&str, &str)]) -> String {
    let mut form = form.to_vec();
    form.push(("Version", "2010-05-15"));
    let response = reqwest::Client::new()
        .post(endpoint())
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/cloudformation/aws4_request, SignedHeaders=host, Signature=0",
        )
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(
        status.is_success(),
        "CloudFormation {form:?}: {status} {body}"
    );
    body
}

/// The text of the first `<tag>` after `after` in `xml`.
fn xml_value(xml: &str, after: &str, tag: &str) -> Option<String> {
    let rest = &xml[xml.find(after)?..];
    let open = format!("<{tag}>");
    let start = rest.find(&open)? + open.len();
    let end = rest[start..].find(&format!("</{tag}>"))?;
    Some(rest[start..start + end].to_string())
}

/// Creates the stack and returns its RoleArn output once it is complete.
async fn create_stack(name: &str, template: &Value) -> String {
    let body = serde_json::to_string(template).unwrap();
    cloudformation(&[
        ("Action", "CreateStack"),
        ("StackName", name),
        ("TemplateBody", &body),
        ("Capabilities.member.1", "CAPABILITY_NAMED_IAM"),
    ])
    .await;
    for _ in 0..60 {
        let described = cloudformation(&[("Action", "DescribeStacks"), ("StackName", name)]).await;
        match xml_value(&described, "<StackName>", "StackStatus").as_deref() {
            Some("CREATE_COMPLETE") => {
                return xml_value(&described, "<OutputKey>RoleArn</OutputKey>", "OutputValue")
                    .expect("the stack outputs RoleArn");
            }
            Some("CREATE_IN_PROGRESS") => {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await
            }
            other => panic!("stack {name} is {other:?}: {described}"),
        }
    }
    panic!("stack {name} was not created in 30 s");
}

/// The documents of the managed policies attached to `role_name`.
async fn attached_policies(aws: &Aws, role_name: &str) -> Vec<Value> {
    let attached = aws
        .iam
        .list_attached_role_policies()
        .role_name(role_name)
        .send()
        .await
        .unwrap();
    let mut documents = Vec::new();
    for policy in attached.attached_policies() {
        let arn = policy.policy_arn().unwrap();
        let version = aws
            .iam
            .get_policy()
            .policy_arn(arn)
            .send()
            .await
            .unwrap()
            .policy()
            .and_then(|p| p.default_version_id().map(str::to_string))
            .unwrap();
        let document = aws
            .iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .unwrap()
            .policy_version()
            .and_then(|v| v.document().map(str::to_string))
            .unwrap();
        let document = urlencoding_decode(&document);
        documents.push(serde_json::from_str(&document).unwrap());
    }
    documents
}

/// IAM returns policy documents URL-encoded (RFC 3986).
fn urlencoding_decode(text: &str) -> String {
    if text.starts_with('{') {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// Template → stack → assume role → deploy → status → destroy. After each
/// command's AssumeRole, nothing is signed with the operator's own key;
/// every call the role made is allowed by the policies the stack attached,
/// each within IAM's 6,144 characters; history names both identities.
#[tokio::test]
async fn onboarding_runs_end_to_end_as_the_role_the_template_makes() {
    let proxy = crate::real_aws::Proxy::start();
    let aws = aws().await;
    let mut env = Env::new("onb");
    env.endpoint = proxy.url.clone();
    env.target_extra = format!("account_id = \"{ACCOUNT}\"\nexternal_id = \"acme-onb-7f3a9c\"\n");
    env.write();

    let printed = env.poolside(&["onboarding", "--env", &env.name, "--output", "json"]);
    printed.assert_code(0);
    let onboarding = printed.one("onboarding");
    let template = onboarding["template"].clone();
    let trust = &template["Resources"]["OperatorRole"]["Properties"]["AssumeRolePolicyDocument"];
    assert_eq!(
        template["Parameters"]["TrustedAccount"]["Default"], ACCOUNT,
        "the engineers' account, read from their own credentials: {template}"
    );
    assert_eq!(
        template["Parameters"]["ExternalId"]["Default"],
        "acme-onb-7f3a9c"
    );
    assert_eq!(
        trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"]["Ref"],
        "ExternalId"
    );

    // cfn-lint is a pip package, not a Debian one: checked where installed.
    let lint = std::process::Command::new("cfn-lint")
        .arg("--version")
        .output();
    if lint.is_ok_and(|out| out.status.success()) {
        let file = env.dir().join("onboarding.json");
        std::fs::write(&file, serde_json::to_string_pretty(&template).unwrap()).unwrap();
        let out = std::process::Command::new("cfn-lint")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cfn-lint: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    } else {
        eprintln!("cfn-lint is not installed: the template was not linted");
    }
    let boundary_name = template["Resources"]["RolesBoundary"]["Properties"]["ManagedPolicyName"]
        .as_str()
        .unwrap()
        .to_string();
    let role_arn = create_stack(&unique_name("poolside-operator"), &template).await;
    assert_eq!(
        role_arn, onboarding["role_arn"],
        "the ARN onboarding announced"
    );
    let role_name = role_arn.rsplit('/').next().unwrap();
    let policies = attached_policies(&aws, role_name).await;
    assert!(
        policies.len() >= 2,
        "the policy is split: {}",
        policies.len()
    );
    for policy in &policies {
        let size = serde_json::to_string(policy)
            .unwrap()
            .chars()
            .filter(|c| !c.is_whitespace())
            .count();
        assert!(size <= 6144, "a managed policy of {size} characters");
    }

    env.target_extra
        .push_str(&format!("role_arn = \"{role_arn}\"\n"));
    env.write();
    let before = proxy.authorizations().await.len();
    let deployed = env.deploy();
    // --stats counts the two calls made as the operator, and AssumeRole
    // is not a change of the account.
    let operations = deployed.one("stats")["calls"]["operations"].clone();
    let sts_calls = |operation: &str| {
        operations
            .as_array()
            .unwrap()
            .iter()
            .filter(|op| op["service"] == "STS" && op["operation"] == operation)
            .map(|op| op["calls"].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(sts_calls("AssumeRole"), 1, "{operations}");
    assert!(sts_calls("GetCallerIdentity") >= 1, "{operations}");
    let status = env.poolside(&["status", "--env", &env.name, "--output", "json"]);
    status.assert_code(0);
    env.poolside(&["destroy", "--env", &env.name, "--yes", "--delete-data"])
        .assert_code(0);
    let history = env.poolside(&[
        "history", "--env", &env.name, "--output", "json", "--limit", "1",
    ]);
    let run = history.one("run");
    assert_eq!(run["command"], "destroy", "{run}");
    assert_eq!(
        run["who"],
        format!("arn:aws:sts::{ACCOUNT}:user/moto"),
        "{run}"
    );
    let acting_as = run["acting_as"].as_str().unwrap_or_default();
    assert!(
        acting_as.starts_with(&format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/poolside-"
        )),
        "{run}"
    );

    let seen = proxy.authorizations().await.split_off(before);
    // Every role poolside made carries the boundary the stack made, and the
    // role may make none without it (nor attach AdministratorAccess).
    let boundary = format!("arn:aws:iam::{ACCOUNT}:policy/poolside-operator/{boundary_name}");
    let created: Vec<&Value> = seen
        .iter()
        .filter(|a| a["action"] == "iam:CreateRole")
        .collect();
    assert!(created.len() >= 3, "{created:?}");
    for call in &created {
        assert_eq!(
            call["context"]["iam:PermissionsBoundary"],
            boundary.as_str(),
            "{call}"
        );
    }
    let a_role = format!("arn:aws:iam::{ACCOUNT}:role/poolside-{}-escalate", env.name);
    for policy in &policies {
        assert!(!crate::iam_policy::allows(
            policy,
            "iam:CreateRole",
            &a_role,
            &serde_json::json!({})
        ));
        assert!(!crate::iam_policy::allows(
            policy,
            "iam:PutRolePolicy",
            &a_role,
            &serde_json::json!({})
        ));
        assert!(!crate::iam_policy::allows(
            policy,
            "iam:DeleteRolePermissionsBoundary",
            &a_role,
            &serde_json::json!({ "iam:PermissionsBoundary": boundary })
        ));
        assert!(!crate::iam_policy::allows(
            policy,
            "iam:AttachRolePolicy",
            &a_role,
            &serde_json::json!({ "iam:PermissionsBoundary": boundary, "iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess" })
        ));
    }
    let own: Vec<&Value> = seen.iter().filter(|a| a["key"] == "test").collect();
    let assumed = own.iter().filter(|a| a["call"] == "sts AssumeRole").count();
    // deploy, status, destroy and history: one AssumeRole each.
    assert_eq!(assumed, 4, "{own:?}");
    for call in &own {
        assert!(
            call["call"] == "sts AssumeRole" || call["call"] == "sts GetCallerIdentity",
            "made with the operator's own credentials: {call}"
        );
        if call["call"] == "sts AssumeRole" {
            assert_eq!(call["resource"], role_arn.as_str(), "{call}");
        }
    }
    let as_role: Vec<Value> = seen
        .iter()
        .filter(|a| a["key"] != "test")
        .cloned()
        .collect();
    assert!(
        as_role.len() > 100,
        "too few calls as the role: {}",
        as_role.len()
    );
    assert_every_call_allowed(&as_role, &policies);
}

/// A role in another account than the file pins is refused before any call.
#[test]
fn a_role_in_another_account_is_refused_before_any_call() {
    let mut env = Env::new("onbx");
    env.endpoint = "http://127.0.0.1:9".into();
    env.target_extra = "account_id = \"111122223333\"\nrole_arn = \"arn:aws:iam::444455556666:role/poolside-operator/x\"\n".into();
    env.write();
    let run = env.poolside(&["plan", "--env", &env.name]);
    run.assert_code(1);
    let err = run.stderr();
    assert!(err.contains("target.role_arn"), "{err}");
    assert!(err.contains("the role is in account 444455556666"), "{err}");
    assert!(!err.contains("127.0.0.1:9"), "an AWS call was tried: {err}");
}
