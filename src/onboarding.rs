//! What a customer's administrator deploys once so that onboarding
//! engineers can run poolside in their account: a role that trusts the
//! engineers' account with an external id, and the operator policy of
//! `iam-policy` attached to it as customer-managed policies.
//!
//! IAM limits a managed policy to 6,144 characters, whitespace aside, and a
//! role to 10 attached managed policies (the default quota): the policy is
//! split by statement into as few policies as fit. Pure: no AWS call.

use crate::blueprint::AccountFacts;
use crate::config::Config;
use serde::Serialize;
use serde_json::{json, Value};

/// "The size of each managed policy cannot exceed 6,144 characters"
/// (IAM and AWS STS quotas; whitespace is not counted).
pub const MANAGED_POLICY_LIMIT: usize = 6144;
/// Managed policies attached to one role (the default quota; AWS raises it to 20 on request).
pub const POLICIES_PER_ROLE: usize = 10;
/// The IAM path of everything the template makes: it keeps the role's ARN
/// out of the `role/poolside-<env>-*` roles the operator policy may manage,
/// so the role cannot edit itself.
pub const PATH: &str = "/poolside-operator/";

/// The role the template makes, and what it holds.
#[derive(Debug, Serialize)]
pub struct OperatorRole {
    pub role_name: String,
    pub path: String,
    /// The ARN the role will have: what `target.role_arn` names.
    pub role_arn: String,
    pub trusted_account: String,
    pub external_id: String,
    pub max_session_duration_seconds: u64,
    pub trust_policy: Value,
    pub policies: Vec<NamedPolicy>,
    /// The boundary every role poolside makes must carry (not attached to
    /// this role): the policies above let it make no other.
    pub permissions_boundary: NamedPolicy,
    pub permissions_boundary_arn: String,
}

#[derive(Debug, Serialize)]
pub struct NamedPolicy {
    pub name: String,
    pub document: Value,
}

/// IAM's count of a policy's size: its characters, whitespace aside.
pub fn policy_size(document: &Value) -> usize {
    serde_json::to_string(document)
        .expect("a policy serializes")
        .chars()
        .filter(|c| !c.is_whitespace())
        .count()
}

fn document(statements: Vec<Value>) -> Value {
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// Splits `policy` into documents of at most `limit` characters each, by
/// whole statements, in their order (first fit); a statement too large
/// alone is cut into parts by its actions.
pub fn split_policy(policy: &Value, limit: usize) -> Result<Vec<Value>, String> {
    let mut pieces = Vec::new();
    for statement in policy["Statement"].as_array().into_iter().flatten() {
        pieces.extend(fitting(statement.clone(), limit)?);
    }
    let mut documents: Vec<Vec<Value>> = Vec::new();
    for piece in pieces {
        let home = documents.iter_mut().find(|statements| {
            let mut with = (*statements).clone();
            with.push(piece.clone());
            policy_size(&document(with)) <= limit
        });
        match home {
            Some(statements) => statements.push(piece),
            None => documents.push(vec![piece]),
        }
    }
    Ok(documents.into_iter().map(document).collect())
}

/// `statement`, or its halves by action until each fits a policy alone.
fn fitting(statement: Value, limit: usize) -> Result<Vec<Value>, String> {
    if policy_size(&document(vec![statement.clone()])) <= limit {
        return Ok(vec![statement]);
    }
    let actions = statement["Action"].as_array().cloned().unwrap_or_default();
    if actions.len() < 2 {
        return Err(format!(
            "statement {} does not fit one managed policy of {limit} characters",
            statement["Sid"]
        ));
    }
    let (first, second) = actions.split_at(actions.len() / 2);
    let mut parts = Vec::new();
    for (half, suffix) in [(first, "A"), (second, "B")] {
        let mut part = statement.clone();
        part["Action"] = json!(half);
        part["Sid"] = json!(format!(
            "{}{suffix}",
            statement["Sid"].as_str().unwrap_or("")
        ));
        parts.extend(fitting(part, limit)?);
    }
    Ok(parts)
}

/// The role for `config`, holding its operator policy (`iam_policy`) bound
/// to the boundary made beside it. `account`: the customer's;
/// `trusted_account`: the account of the engineers who assume the role;
/// `sources`: the repositories a release may be promoted from.
pub fn operator_role(
    config: &Config,
    account: &AccountFacts,
    trusted_account: &str,
    external_id: &str,
    sources: &[String],
) -> Result<OperatorRole, String> {
    let (path, role_name) = match config.role() {
        // The role named in the file, so the template regenerates it.
        Some(role) => split_role_arn(&role.arn),
        None => (
            PATH.to_string(),
            format!("poolside-operator-{}", config.name),
        ),
    };
    let partition = &account.partition;
    let role_arn = format!(
        "arn:{partition}:iam::{}:role{path}{role_name}",
        account.account_id
    );
    let boundary_arn = crate::config::boundary_of(&role_arn);
    let policy =
        crate::iam_policy::generate_bounded(config, account, sources, Some(&boundary_arn)).policy;
    let documents = split_policy(&policy, MANAGED_POLICY_LIMIT)?;
    if documents.len() > POLICIES_PER_ROLE {
        return Err(format!(
            "the operator policy needs {} managed policies, more than the {POLICIES_PER_ROLE} a role may have attached by default",
            documents.len()
        ));
    }
    let boundary = crate::blueprint::roles_boundary(config, account).map_err(|e| e.to_string())?;
    if policy_size(&boundary) > MANAGED_POLICY_LIMIT {
        return Err("the roles' permissions boundary does not fit one managed policy".into());
    }
    let policies = documents
        .into_iter()
        .enumerate()
        .map(|(i, document)| NamedPolicy {
            name: format!("{role_name}-{}", i + 1),
            document,
        })
        .collect();
    // IAM: a role's MaxSessionDuration is 1 to 12 hours.
    let max_session = config
        .role_settings
        .session_duration
        .max(std::time::Duration::from_secs(3600));
    Ok(OperatorRole {
        trust_policy: trust_policy(
            &format!("arn:{partition}:iam::{trusted_account}:root"),
            external_id,
        ),
        permissions_boundary: NamedPolicy {
            name: format!("{role_name}-boundary"),
            document: boundary,
        },
        permissions_boundary_arn: boundary_arn,
        role_arn,
        role_name,
        path,
        trusted_account: trusted_account.to_string(),
        external_id: external_id.to_string(),
        max_session_duration_seconds: max_session.as_secs(),
        policies,
    })
}

/// (path, name) of `arn:...:role/PATH/NAME`, the path with its slashes.
fn split_role_arn(arn: &str) -> (String, String) {
    let resource = arn.split_once(":role/").map_or(arn, |(_, r)| r);
    match resource.rsplit_once('/') {
        Some((path, name)) => (format!("/{path}/"), name.to_string()),
        None => ("/".to_string(), resource.to_string()),
    }
}

/// Only principals of `trusted_root`'s account, and only with the external id.
fn trust_policy(trusted_root: &str, external_id: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "AWS": trusted_root },
            "Action": "sts:AssumeRole",
            "Condition": { "StringEquals": { "sts:ExternalId": external_id } }
        }]
    })
}

/// The role itself: trusting `TrustedAccount` with `ExternalId`.
fn role_resource(config: &Config, role: &OperatorRole) -> Value {
    let mut trust = role.trust_policy.clone();
    trust["Statement"][0]["Principal"]["AWS"] =
        json!({ "Fn::Sub": "arn:${AWS::Partition}:iam::${TrustedAccount}:root" });
    trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] =
        json!({ "Ref": "ExternalId" });
    json!({
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": role.role_name,
            "Path": role.path,
            "Description": format!("Assumed by poolside to deploy and run environment {}", config.name),
            "MaxSessionDuration": role.max_session_duration_seconds,
            "AssumeRolePolicyDocument": trust,
            // Not `poolside:env`: discovery would count the role as the
            // environment's, and destroy would delete it.
            "Tags": [{ "Key": "poolside:operator-role-of", "Value": config.name }]
        }
    })
}

/// The CloudFormation template that makes `role` (JSON, which
/// CloudFormation reads as it reads YAML).
pub fn cloudformation(config: &Config, role: &OperatorRole) -> Value {
    let mut resources = serde_json::Map::new();
    resources.insert("OperatorRole".into(), role_resource(config, role));
    for (i, policy) in role.policies.iter().enumerate() {
        resources.insert(
            format!("OperatorPolicy{}", i + 1),
            json!({
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {
                    "ManagedPolicyName": policy.name,
                    "Path": role.path,
                    // The same for every part: CloudFormation replaces a
                    // managed policy whose description changes, which a named
                    // policy cannot be, so a stack update would fail.
                    "Description": format!("poolside operator policy of environment {}", config.name),
                    "PolicyDocument": policy.document,
                    "Roles": [{ "Ref": "OperatorRole" }]
                }
            }),
        );
    }
    resources.insert(
        "RolesBoundary".into(),
        json!({
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "ManagedPolicyName": role.permissions_boundary.name,
                "Path": role.path,
                "Description": format!("The most a role poolside makes in environment {} may do", config.name),
                "PolicyDocument": role.permissions_boundary.document
            }
        }),
    );
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!(
            "The role poolside {} assumes to deploy environment {} in region {}",
            env!("CARGO_PKG_VERSION"), config.name, config.region
        ),
        "Parameters": {
            "TrustedAccount": {
                "Type": "String",
                "Default": role.trusted_account,
                "AllowedPattern": "[0-9]{12}",
                "Description": "The AWS account of the engineers who run poolside"
            },
            "ExternalId": {
                "Type": "String",
                "Default": role.external_id,
                "MinLength": 2,
                "MaxLength": 1224,
                "AllowedPattern": "[\\w+=,.@:/-]*",
                "Description": "The external id the engineers send with AssumeRole (target.external_id)"
            }
        },
        "Resources": resources,
        "Outputs": {
            "RoleArn": {
                "Description": format!("target.role_arn of environments/{}.toml", config.name),
                "Value": { "Fn::GetAtt": ["OperatorRole", "Arn"] }
            }
        }
    })
}

/// An external id to propose when the file has none: AWS advises one
/// unique to each customer, which a third party cannot guess.
pub fn propose_external_id() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..24)
        .map(|_| char::from(b"abcdefghijkmnpqrstuvwxyz23456789"[rng.gen_range(0..32)]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(sid: &str, actions: usize) -> Value {
        json!({
            "Sid": sid,
            "Effect": "Allow",
            "Action": (0..actions).map(|i| format!("ec2:DescribeSomething{i:04}")).collect::<Vec<_>>(),
            "Resource": ["*"]
        })
    }

    #[test]
    fn a_policy_is_split_by_statement_into_documents_that_fit() {
        let policy = document(vec![
            statement("A", 100),
            statement("B", 100),
            statement("C", 10),
            statement("D", 600),
        ]);
        assert!(policy_size(&policy) > MANAGED_POLICY_LIMIT);
        let documents = split_policy(&policy, MANAGED_POLICY_LIMIT).unwrap();
        assert!(documents.len() >= 2, "{documents:?}");
        let mut actions = 0;
        for d in &documents {
            assert!(policy_size(d) <= MANAGED_POLICY_LIMIT, "{}", policy_size(d));
            for s in d["Statement"].as_array().unwrap() {
                actions += s["Action"].as_array().unwrap().len();
            }
        }
        // Nothing lost: D, too large alone, was cut by its actions.
        assert_eq!(actions, 810);
        let sids: Vec<&str> = documents
            .iter()
            .flat_map(|d| d["Statement"].as_array().unwrap())
            .map(|s| s["Sid"].as_str().unwrap())
            .collect();
        assert!(sids.iter().any(|s| s.starts_with("DA")), "{sids:?}");
        // A policy that fits stays one document.
        let small = document(vec![statement("A", 3)]);
        assert_eq!(split_policy(&small, MANAGED_POLICY_LIMIT).unwrap(), [small]);
    }

    #[test]
    fn whitespace_is_not_counted() {
        let policy = json!({ "Statement": [{ "Sid": "a b" }] });
        assert_eq!(
            policy_size(&policy),
            r#"{"Statement":[{"Sid":"ab"}]}"#.len()
        );
    }

    #[test]
    fn the_role_named_in_the_file_is_the_one_regenerated() {
        assert_eq!(
            split_role_arn("arn:aws:iam::1:role/poolside-operator/poolside-operator-pilot"),
            (
                "/poolside-operator/".into(),
                "poolside-operator-pilot".into()
            )
        );
        assert_eq!(
            split_role_arn("arn:aws:iam::1:role/a/b/c"),
            ("/a/b/".into(), "c".into())
        );
        assert_eq!(
            split_role_arn("arn:aws:iam::1:role/plain"),
            ("/".into(), "plain".into())
        );
    }

    #[test]
    fn a_proposed_external_id_is_valid_and_new_each_time() {
        let (a, b) = (propose_external_id(), propose_external_id());
        assert_eq!(a.len(), 24);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    /// The template makes the boundary beside the role, and the role's
    /// policies make and change only roles that carry it.
    #[test]
    fn the_template_bounds_every_role_poolside_makes() {
        let text = "name = \"acme\"\nregion = \"eu-west-1\"\nphase = \"pilot\"\n[target]\naccount_id = \"111122223333\"\nexternal_id = \"acme-1234\"\n\
             [network]\nvpc_cidr = \"10.1.0.0/16\"\navailability_zones = [\"eu-west-1a\", \"eu-west-1b\"]\nallowed_ingress_cidrs = [\"203.0.113.0/24\"]\n";
        let config = crate::config::parse("acme.toml", "acme", text.to_string()).unwrap();
        let account = AccountFacts::example();
        let role = operator_role(&config, &account, "444455556666", "acme-1234", &[]).unwrap();
        assert_eq!(
            role.permissions_boundary_arn,
            "arn:aws:iam::111122223333:policy/poolside-operator/poolside-operator-acme-boundary"
        );
        assert_eq!(
            role.permissions_boundary_arn,
            crate::config::boundary_of(&role.role_arn)
        );
        let policies = serde_json::to_string(&role.policies).unwrap();
        assert_eq!(
            policies.matches(&role.permissions_boundary_arn).count(),
            2,
            "the permissions statement and the managed-policy one: {policies}"
        );
        assert!(!policies.contains("iam:DeleteRolePermissionsBoundary"));
        let template = cloudformation(&config, &role);
        let boundary = &template["Resources"]["RolesBoundary"]["Properties"];
        assert_eq!(
            boundary["ManagedPolicyName"],
            "poolside-operator-acme-boundary"
        );
        assert!(
            boundary.get("Roles").is_none(),
            "the boundary is not the operator's own"
        );
    }
}
