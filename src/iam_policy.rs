//! The IAM policy an operator needs to run poolside on one environment.
//!
//! One table lists every AWS operation poolside calls, by the names the
//! `--stats` interceptor records (service, operation), with the IAM action
//! it needs and what that action may be scoped to. The policy is rendered
//! from that table, so an operation added to the code without a row here is
//! caught by the test that compares a real run's `--stats` with it.
//!
//! Scoping follows what each service supports: names and ARNs of this
//! environment where AWS allows resource-level permissions, `*` where it
//! does not (most Describe and List calls, EC2 creates, task definitions,
//! Application Auto Scaling).

use crate::blueprint::{self, AccountFacts};
use crate::config::Config;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What an action may be scoped to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    /// No resource-level permissions for this action (or none poolside can name).
    Any,
    Roles,
    /// The same roles, for attaching and detaching the one AWS-managed
    /// policy poolside uses: any other (AdministratorAccess, say) would let
    /// the operator give a role it passes to a task more than poolside does.
    RolesManagedPolicy,
    /// The same roles: what sets their permissions. In an environment that
    /// acts as the customer's role, only on roles that carry the
    /// permissions boundary (`iam:PermissionsBoundary`).
    RolesPermissions,
    /// Removing a role's boundary: left out where there is one to keep.
    RolesBoundaryRemoval,
    /// The same roles, passed to ECS tasks only.
    PassRoles,
    ServiceLinkedRoles,
    Secrets,
    /// The master secret RDS creates and manages for the instance (`rds!db-...`).
    RdsManagedSecret,
    LogGroup,
    Repository,
    Bucket,
    /// The bucket's objects (`<bucket>/*`).
    BucketObjects,
    Database,
    LoadBalancer,
    Ecs,
    Alarms,
    Dashboard,
    /// Record changes in the API's hosted zone (conditioned on record types).
    HostedZoneChanges,
    /// Reads of the API's hosted zone.
    HostedZone,
    /// Route 53's change records, which GetChange reads (`change/*`).
    Route53Changes,
    /// The alarms Application Auto Scaling creates and deletes as the
    /// caller for the service's target-tracking policies.
    ScalingAlarms,
    /// The repositories of other environments in this account and region,
    /// read by a release promotion from them (`promote --from`).
    PromotionSources,
}

/// (service as `--stats` names it, operation, IAM action, scope).
#[rustfmt::skip]
const OPERATIONS: &[(&str, &str, &str, Scope)] = &[
    ("STS", "GetCallerIdentity", "sts:GetCallerIdentity", Scope::Any),
    // EC2: creates name no existing resource, and the network's resources are
    // many kinds; scoping EC2 by tag condition is left to a later version.
    ("EC2", "AllocateAddress", "ec2:AllocateAddress", Scope::Any),
    ("EC2", "AssociateRouteTable", "ec2:AssociateRouteTable", Scope::Any),
    ("EC2", "AttachInternetGateway", "ec2:AttachInternetGateway", Scope::Any),
    ("EC2", "AuthorizeSecurityGroupEgress", "ec2:AuthorizeSecurityGroupEgress", Scope::Any),
    ("EC2", "AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupIngress", Scope::Any),
    ("EC2", "CreateInternetGateway", "ec2:CreateInternetGateway", Scope::Any),
    ("EC2", "CreateNatGateway", "ec2:CreateNatGateway", Scope::Any),
    ("EC2", "CreateRoute", "ec2:CreateRoute", Scope::Any),
    ("EC2", "CreateRouteTable", "ec2:CreateRouteTable", Scope::Any),
    ("EC2", "CreateSecurityGroup", "ec2:CreateSecurityGroup", Scope::Any),
    ("EC2", "CreateSubnet", "ec2:CreateSubnet", Scope::Any),
    // What still holds a subnet or group that destroy cannot delete.
    ("EC2", "DescribeNetworkInterfaces", "ec2:DescribeNetworkInterfaces", Scope::Any),
    // drift: what else runs in the environment's VPC.
    ("EC2", "DescribeInstances", "ec2:DescribeInstances", Scope::Any),
    ("EC2", "CreateTags", "ec2:CreateTags", Scope::Any),
    ("EC2", "CreateVpc", "ec2:CreateVpc", Scope::Any),
    ("EC2", "CreateVpcEndpoint", "ec2:CreateVpcEndpoint", Scope::Any),
    ("EC2", "DeleteInternetGateway", "ec2:DeleteInternetGateway", Scope::Any),
    ("EC2", "DeleteNatGateway", "ec2:DeleteNatGateway", Scope::Any),
    ("EC2", "DeleteRoute", "ec2:DeleteRoute", Scope::Any),
    ("EC2", "DeleteRouteTable", "ec2:DeleteRouteTable", Scope::Any),
    ("EC2", "DeleteSecurityGroup", "ec2:DeleteSecurityGroup", Scope::Any),
    ("EC2", "DeleteSubnet", "ec2:DeleteSubnet", Scope::Any),
    ("EC2", "DeleteTags", "ec2:DeleteTags", Scope::Any),
    ("EC2", "DeleteVpc", "ec2:DeleteVpc", Scope::Any),
    ("EC2", "DeleteVpcEndpoints", "ec2:DeleteVpcEndpoints", Scope::Any),
    ("EC2", "DescribeAddresses", "ec2:DescribeAddresses", Scope::Any),
    ("EC2", "DescribeInternetGateways", "ec2:DescribeInternetGateways", Scope::Any),
    ("EC2", "DescribeNatGateways", "ec2:DescribeNatGateways", Scope::Any),
    ("EC2", "DescribePrefixLists", "ec2:DescribePrefixLists", Scope::Any),
    ("EC2", "DescribeRouteTables", "ec2:DescribeRouteTables", Scope::Any),
    ("EC2", "DescribeSecurityGroupRules", "ec2:DescribeSecurityGroupRules", Scope::Any),
    ("EC2", "DescribeSecurityGroups", "ec2:DescribeSecurityGroups", Scope::Any),
    ("EC2", "DescribeSubnets", "ec2:DescribeSubnets", Scope::Any),
    ("EC2", "DescribeVpcAttribute", "ec2:DescribeVpcAttribute", Scope::Any),
    ("EC2", "DescribeVpcEndpoints", "ec2:DescribeVpcEndpoints", Scope::Any),
    ("EC2", "DescribeVpcs", "ec2:DescribeVpcs", Scope::Any),
    ("EC2", "DetachInternetGateway", "ec2:DetachInternetGateway", Scope::Any),
    ("EC2", "DisassociateRouteTable", "ec2:DisassociateRouteTable", Scope::Any),
    ("EC2", "ModifyVpcAttribute", "ec2:ModifyVpcAttribute", Scope::Any),
    ("EC2", "ModifyVpcEndpoint", "ec2:ModifyVpcEndpoint", Scope::Any),
    ("EC2", "ReleaseAddress", "ec2:ReleaseAddress", Scope::Any),
    ("EC2", "DisassociateAddress", "ec2:DisassociateAddress", Scope::Any),
    ("EC2", "ReplaceRoute", "ec2:ReplaceRoute", Scope::Any),
    ("EC2", "ReplaceRouteTableAssociation", "ec2:ReplaceRouteTableAssociation", Scope::Any),
    ("EC2", "RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupEgress", Scope::Any),
    ("EC2", "RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress", Scope::Any),
    // S3: IAM's action names differ from the API's.
    ("S3", "CreateBucket", "s3:CreateBucket", Scope::Bucket),
    ("S3", "DeleteBucket", "s3:DeleteBucket", Scope::Bucket),
    ("S3", "DeleteBucketLifecycle", "s3:PutLifecycleConfiguration", Scope::Bucket),
    ("S3", "DeleteBucketPolicy", "s3:DeleteBucketPolicy", Scope::Bucket),
    // destroy --delete-data empties the bucket, every version.
    ("S3", "DeleteObjects", "s3:DeleteObjectVersion", Scope::BucketObjects),
    ("S3", "GetBucketEncryption", "s3:GetEncryptionConfiguration", Scope::Bucket),
    ("S3", "GetBucketLifecycleConfiguration", "s3:GetLifecycleConfiguration", Scope::Bucket),
    ("S3", "GetBucketPolicy", "s3:GetBucketPolicy", Scope::Bucket),
    ("S3", "GetBucketTagging", "s3:GetBucketTagging", Scope::Bucket),
    ("S3", "GetBucketVersioning", "s3:GetBucketVersioning", Scope::Bucket),
    ("S3", "GetPublicAccessBlock", "s3:GetBucketPublicAccessBlock", Scope::Bucket),
    ("S3", "GetObject", "s3:GetObject", Scope::BucketObjects),
    ("S3", "HeadBucket", "s3:ListBucket", Scope::Bucket),
    ("S3", "ListObjectVersions", "s3:ListBucketVersions", Scope::Bucket),
    ("S3", "ListObjectsV2", "s3:ListBucket", Scope::Bucket),
    ("S3", "PutBucketEncryption", "s3:PutEncryptionConfiguration", Scope::Bucket),
    ("S3", "PutBucketLifecycleConfiguration", "s3:PutLifecycleConfiguration", Scope::Bucket),
    ("S3", "PutBucketPolicy", "s3:PutBucketPolicy", Scope::Bucket),
    ("S3", "PutBucketTagging", "s3:PutBucketTagging", Scope::Bucket),
    ("S3", "PutBucketVersioning", "s3:PutBucketVersioning", Scope::Bucket),
    // The lock and the history, in the state bucket.
    ("S3", "PutObject", "s3:PutObject", Scope::BucketObjects),
    ("S3", "DeleteObject", "s3:DeleteObject", Scope::BucketObjects),
    ("S3", "PutPublicAccessBlock", "s3:PutBucketPublicAccessBlock", Scope::Bucket),
    // image push: ECR's registry credentials, which name no repository.
    ("ECR", "GetAuthorizationToken", "ecr:GetAuthorizationToken", Scope::Any),
    ("ECR", "CreateRepository", "ecr:CreateRepository", Scope::Repository),
    ("ECR", "DeleteLifecyclePolicy", "ecr:DeleteLifecyclePolicy", Scope::Repository),
    ("ECR", "DeleteRepository", "ecr:DeleteRepository", Scope::Repository),
    ("ECR", "DescribeImages", "ecr:DescribeImages", Scope::Repository),
    // A release promotion: the source's manifest into the target's repository.
    ("ECR", "BatchGetImage", "ecr:BatchGetImage", Scope::Repository),
    ("ECR", "PutImage", "ecr:PutImage", Scope::Repository),
    ("ECR", "DescribeRepositories", "ecr:DescribeRepositories", Scope::Repository),
    ("ECR", "GetLifecyclePolicy", "ecr:GetLifecyclePolicy", Scope::Repository),
    ("ECR", "ListImages", "ecr:ListImages", Scope::Repository),
    ("ECR", "ListTagsForResource", "ecr:ListTagsForResource", Scope::Repository),
    ("ECR", "PutImageScanningConfiguration", "ecr:PutImageScanningConfiguration", Scope::Repository),
    ("ECR", "PutImageTagMutability", "ecr:PutImageTagMutability", Scope::Repository),
    ("ECR", "PutLifecyclePolicy", "ecr:PutLifecyclePolicy", Scope::Repository),
    ("ECR", "TagResource", "ecr:TagResource", Scope::Repository),
    ("ECR", "UntagResource", "ecr:UntagResource", Scope::Repository),
    ("Secrets Manager", "CreateSecret", "secretsmanager:CreateSecret", Scope::Secrets),
    ("Secrets Manager", "DeleteSecret", "secretsmanager:DeleteSecret", Scope::Secrets),
    ("Secrets Manager", "DescribeSecret", "secretsmanager:DescribeSecret", Scope::Secrets),
    ("Secrets Manager", "GetSecretValue", "secretsmanager:GetSecretValue", Scope::Secrets),
    ("Secrets Manager", "RestoreSecret", "secretsmanager:RestoreSecret", Scope::Secrets),
    ("Secrets Manager", "TagResource", "secretsmanager:TagResource", Scope::Secrets),
    ("Secrets Manager", "UntagResource", "secretsmanager:UntagResource", Scope::Secrets),
    ("Secrets Manager", "UpdateSecret", "secretsmanager:UpdateSecret", Scope::Secrets),
    ("RDS", "AddTagsToResource", "rds:AddTagsToResource", Scope::Database),
    ("RDS", "CreateDBInstance", "rds:CreateDBInstance", Scope::Database),
    ("RDS", "CreateDBParameterGroup", "rds:CreateDBParameterGroup", Scope::Database),
    ("RDS", "CreateDBSubnetGroup", "rds:CreateDBSubnetGroup", Scope::Database),
    ("RDS", "DeleteDBInstance", "rds:DeleteDBInstance", Scope::Database),
    ("RDS", "CreateDBSnapshot", "rds:CreateDBSnapshot", Scope::Database),
    ("RDS", "DeleteDBParameterGroup", "rds:DeleteDBParameterGroup", Scope::Database),
    ("RDS", "DeleteDBSubnetGroup", "rds:DeleteDBSubnetGroup", Scope::Database),
    ("RDS", "DescribeDBEngineVersions", "rds:DescribeDBEngineVersions", Scope::Any),
    // Why a major upgrade did not happen: the instance's events.
    ("RDS", "DescribeEvents", "rds:DescribeEvents", Scope::Any),
    // Whether a major upgrade's family offers pgvector and pg_cron.
    (
        "RDS",
        "DescribeEngineDefaultParameters",
        "rds:DescribeEngineDefaultParameters",
        Scope::Any,
    ),
    ("RDS", "DescribeDBInstances", "rds:DescribeDBInstances", Scope::Database),
    ("RDS", "DescribePendingMaintenanceActions", "rds:DescribePendingMaintenanceActions", Scope::Any),
    ("RDS", "DescribeDBSnapshots", "rds:DescribeDBSnapshots", Scope::Any),
    // Retained backups are named by a resource id RDS makes (`auto-backup:ab-...`).
    ("RDS", "DescribeDBInstanceAutomatedBackups", "rds:DescribeDBInstanceAutomatedBackups", Scope::Any),
    ("RDS", "DescribeDBParameterGroups", "rds:DescribeDBParameterGroups", Scope::Database),
    ("RDS", "DescribeDBParameters", "rds:DescribeDBParameters", Scope::Database),
    ("RDS", "DescribeDBSubnetGroups", "rds:DescribeDBSubnetGroups", Scope::Database),
    ("RDS", "ListTagsForResource", "rds:ListTagsForResource", Scope::Database),
    ("RDS", "ModifyDBInstance", "rds:ModifyDBInstance", Scope::Database),
    ("RDS", "ModifyDBParameterGroup", "rds:ModifyDBParameterGroup", Scope::Database),
    ("RDS", "ModifyDBSubnetGroup", "rds:ModifyDBSubnetGroup", Scope::Database),
    ("RDS", "RebootDBInstance", "rds:RebootDBInstance", Scope::Database),
    ("RDS", "RemoveTagsFromResource", "rds:RemoveTagsFromResource", Scope::Database),
    ("RDS", "ResetDBParameterGroup", "rds:ResetDBParameterGroup", Scope::Database),
    ("IAM", "AttachRolePolicy", "iam:AttachRolePolicy", Scope::RolesManagedPolicy),
    ("IAM", "CreateRole", "iam:CreateRole", Scope::RolesPermissions),
    ("IAM", "CreateServiceLinkedRole", "iam:CreateServiceLinkedRole", Scope::ServiceLinkedRoles),
    ("IAM", "DeleteRole", "iam:DeleteRole", Scope::Roles),
    ("IAM", "DeleteRolePolicy", "iam:DeleteRolePolicy", Scope::RolesPermissions),
    ("IAM", "DeleteRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary", Scope::RolesBoundaryRemoval),
    ("IAM", "DetachRolePolicy", "iam:DetachRolePolicy", Scope::RolesManagedPolicy),
    ("IAM", "GetRole", "iam:GetRole", Scope::Roles),
    ("IAM", "GetRolePolicy", "iam:GetRolePolicy", Scope::Roles),
    ("IAM", "ListAttachedRolePolicies", "iam:ListAttachedRolePolicies", Scope::Roles),
    ("IAM", "ListRolePolicies", "iam:ListRolePolicies", Scope::Roles),
    ("IAM", "PutRolePolicy", "iam:PutRolePolicy", Scope::RolesPermissions),
    ("IAM", "PutRolePermissionsBoundary", "iam:PutRolePermissionsBoundary", Scope::RolesPermissions),
    ("IAM", "TagRole", "iam:TagRole", Scope::Roles),
    ("IAM", "UntagRole", "iam:UntagRole", Scope::Roles),
    ("IAM", "UpdateAssumeRolePolicy", "iam:UpdateAssumeRolePolicy", Scope::Roles),
    ("IAM", "UpdateRole", "iam:UpdateRole", Scope::Roles),
    ("CloudWatch Logs", "CreateLogGroup", "logs:CreateLogGroup", Scope::LogGroup),
    ("CloudWatch Logs", "DeleteLogGroup", "logs:DeleteLogGroup", Scope::LogGroup),
    ("CloudWatch Logs", "DescribeLogGroups", "logs:DescribeLogGroups", Scope::Any),
    ("CloudWatch Logs", "GetLogEvents", "logs:GetLogEvents", Scope::LogGroup),
    ("CloudWatch Logs", "ListTagsForResource", "logs:ListTagsForResource", Scope::LogGroup),
    ("CloudWatch Logs", "PutRetentionPolicy", "logs:PutRetentionPolicy", Scope::LogGroup),
    ("CloudWatch Logs", "TagResource", "logs:TagResource", Scope::LogGroup),
    ("CloudWatch Logs", "UntagResource", "logs:UntagResource", Scope::LogGroup),
    ("ECS", "CreateCluster", "ecs:CreateCluster", Scope::Ecs),
    ("ECS", "CreateService", "ecs:CreateService", Scope::Ecs),
    ("ECS", "DeleteCluster", "ecs:DeleteCluster", Scope::Ecs),
    ("ECS", "DeleteService", "ecs:DeleteService", Scope::Ecs),
    ("ECS", "DeregisterTaskDefinition", "ecs:DeregisterTaskDefinition", Scope::Any),
    ("ECS", "DescribeClusters", "ecs:DescribeClusters", Scope::Ecs),
    ("ECS", "DescribeServices", "ecs:DescribeServices", Scope::Ecs),
    // The schema task (database.schema_runner = "ecs-task").
    ("ECS", "DescribeTasks", "ecs:DescribeTasks", Scope::Ecs),
    ("ECS", "RunTask", "ecs:RunTask", Scope::Ecs),
    ("ECS", "StopTask", "ecs:StopTask", Scope::Ecs),
    ("ECS", "DescribeTaskDefinition", "ecs:DescribeTaskDefinition", Scope::Any),
    ("ECS", "ListTaskDefinitions", "ecs:ListTaskDefinitions", Scope::Any),
    // Following a rollout (canary, linear) to its end.
    ("ECS", "ListServiceDeployments", "ecs:ListServiceDeployments", Scope::Ecs),
    ("ECS", "DescribeServiceDeployments", "ecs:DescribeServiceDeployments", Scope::Any),
    ("ECS", "RegisterTaskDefinition", "ecs:RegisterTaskDefinition", Scope::Any),
    ("ECS", "TagResource", "ecs:TagResource", Scope::Ecs),
    ("ECS", "UntagResource", "ecs:UntagResource", Scope::Ecs),
    ("ECS", "UpdateCluster", "ecs:UpdateCluster", Scope::Ecs),
    ("ECS", "UpdateService", "ecs:UpdateService", Scope::Ecs),
    ("Elastic Load Balancing v2", "AddTags", "elasticloadbalancing:AddTags", Scope::LoadBalancer),
    ("Elastic Load Balancing v2", "CreateListener", "elasticloadbalancing:CreateListener", Scope::LoadBalancer),
    ("Elastic Load Balancing v2", "CreateRule", "elasticloadbalancing:CreateRule", Scope::LoadBalancer),
    ("Elastic Load Balancing v2", "CreateLoadBalancer", "elasticloadbalancing:CreateLoadBalancer", Scope::LoadBalancer),
    ("Elastic Load Balancing v2", "CreateTargetGroup", "elasticloadbalancing:CreateTargetGroup", Scope::LoadBalancer),
    ("Elastic Load Balancing v2", "DeleteListener", "elasticloadbalancing:DeleteListener", Scope::LoadBalancer),
    ("Elastic Load Balancing v2", "DeleteRule", "elasticloadbalancing:DeleteRule", Scope::LoadBalancer),
    ("Elastic Load Balancing v2", "DeleteLoadBalancer", "elasticloadbalancing:DeleteLoadBalancer", Scope::LoadBalancer),
    ("Elastic Load Balancing v2", "DeleteTargetGroup", "elasticloadbalancing:DeleteTargetGroup", Scope::LoadBalancer),
    ("Elastic Load Balancing v2", "DescribeListeners", "elasticloadbalancing:DescribeListeners", Scope::Any),
    ("Elastic Load Balancing v2", "DescribeRules", "elasticloadbalancing:DescribeRules", Scope::Any),
    ("Elastic Load Balancing v2", "DescribeLoadBalancers", "elasticloadbalancing:DescribeLoadBalancers", Scope::Any),
    ("Elastic Load Balancing v2", "DescribeTags", "elasticloadbalancing:DescribeTags", Scope::Any),
    ("Elastic Load Balancing v2", "DescribeTargetGroupAttributes", "elasticloadbalancing:DescribeTargetGroupAttributes", Scope::Any),
    ("Elastic Load Balancing v2", "DescribeTargetGroups", "elasticloadbalancing:DescribeTargetGroups", Scope::Any),
    ("Elastic Load Balancing v2", "DescribeTargetHealth", "elasticloadbalancing:DescribeTargetHealth", Scope::Any),
    ("Elastic Load Balancing v2", "ModifyListener", "elasticloadbalancing:ModifyListener", Scope::LoadBalancer),
    ("Elastic Load Balancing v2", "ModifyRule", "elasticloadbalancing:ModifyRule", Scope::LoadBalancer),
    ("Elastic Load Balancing v2", "SetRulePriorities", "elasticloadbalancing:SetRulePriorities", Scope::LoadBalancer),
    ("Elastic Load Balancing v2", "ModifyTargetGroup", "elasticloadbalancing:ModifyTargetGroup", Scope::LoadBalancer),
    ("Elastic Load Balancing v2", "ModifyTargetGroupAttributes", "elasticloadbalancing:ModifyTargetGroupAttributes", Scope::LoadBalancer),
    ("Elastic Load Balancing v2", "RemoveTags", "elasticloadbalancing:RemoveTags", Scope::LoadBalancer),
    ("Elastic Load Balancing v2", "SetSecurityGroups", "elasticloadbalancing:SetSecurityGroups", Scope::LoadBalancer),
    ("Elastic Load Balancing v2", "SetSubnets", "elasticloadbalancing:SetSubnets", Scope::LoadBalancer),
    ("CloudWatch", "DeleteAlarms", "cloudwatch:DeleteAlarms", Scope::Alarms),
    ("CloudWatch", "DeleteDashboards", "cloudwatch:DeleteDashboards", Scope::Dashboard),
    ("CloudWatch", "DescribeAlarmHistory", "cloudwatch:DescribeAlarmHistory", Scope::Any),
    ("CloudWatch", "DescribeAlarms", "cloudwatch:DescribeAlarms", Scope::Any),
    ("CloudWatch", "GetDashboard", "cloudwatch:GetDashboard", Scope::Dashboard),
    ("CloudWatch", "ListTagsForResource", "cloudwatch:ListTagsForResource", Scope::Alarms),
    // One read for every alarm's tags (discovery), by the environment's tag.
    ("Resource Groups Tagging API", "GetResources", "tag:GetResources", Scope::Any),
    ("CloudWatch", "PutDashboard", "cloudwatch:PutDashboard", Scope::Dashboard),
    ("CloudWatch", "PutMetricAlarm", "cloudwatch:PutMetricAlarm", Scope::Alarms),
    // ACM certificate ARNs are random: they cannot be named before they exist.
    ("ACM", "AddTagsToCertificate", "acm:AddTagsToCertificate", Scope::Any),
    ("ACM", "DeleteCertificate", "acm:DeleteCertificate", Scope::Any),
    ("ACM", "DescribeCertificate", "acm:DescribeCertificate", Scope::Any),
    ("ACM", "ListCertificates", "acm:ListCertificates", Scope::Any),
    ("ACM", "ListTagsForCertificate", "acm:ListTagsForCertificate", Scope::Any),
    ("ACM", "RemoveTagsFromCertificate", "acm:RemoveTagsFromCertificate", Scope::Any),
    ("ACM", "RequestCertificate", "acm:RequestCertificate", Scope::Any),
    ("Route 53", "ChangeResourceRecordSets", "route53:ChangeResourceRecordSets", Scope::HostedZoneChanges),
    ("Route 53", "GetChange", "route53:GetChange", Scope::Route53Changes),
    ("Route 53", "ListResourceRecordSets", "route53:ListResourceRecordSets", Scope::HostedZone),
    ("Application Auto Scaling", "DeregisterScalableTarget", "application-autoscaling:DeregisterScalableTarget", Scope::Any),
    ("Application Auto Scaling", "DescribeScalableTargets", "application-autoscaling:DescribeScalableTargets", Scope::Any),
    ("Application Auto Scaling", "DescribeScalingPolicies", "application-autoscaling:DescribeScalingPolicies", Scope::Any),
    ("Application Auto Scaling", "PutScalingPolicy", "application-autoscaling:PutScalingPolicy", Scope::Any),
    ("Application Auto Scaling", "RegisterScalableTarget", "application-autoscaling:RegisterScalableTarget", Scope::Any),
];

/// Actions no API call of poolside's names, which AWS checks on its behalf,
/// and actions a call needs on a second kind of resource.
#[rustfmt::skip]
const IMPLIED: &[(&str, Scope, &str)] = &[
    // RegisterTaskDefinition and RunTask name the roles: ECS must be allowed them.
    ("iam:PassRole", Scope::PassRoles, "the task definitions name the task and execution roles; the service names the role ECS shifts traffic with"),
    // PutMetricAlarm with tags.
    ("cloudwatch:TagResource", Scope::Alarms, "alarms are tagged at create"),
    // ManageMasterUserPassword: RDS creates the master secret as the caller.
    ("secretsmanager:CreateSecret", Scope::RdsManagedSecret, "RDS creates the master secret as the caller"),
    ("secretsmanager:TagResource", Scope::RdsManagedSecret, "RDS tags the master secret as the caller"),
    ("secretsmanager:GetSecretValue", Scope::RdsManagedSecret, "the schema step (deploy-host) and drift log in as the master user"),
    ("secretsmanager:DescribeSecret", Scope::RdsManagedSecret, "the master secret is described before it is read"),
    // DeleteDBInstance with FinalDBSnapshotIdentifier.
    ("rds:CreateDBSnapshot", Scope::Database, "the final snapshot is taken as the caller"),
    // Application Auto Scaling's target tracking makes its alarms as the caller.
    ("cloudwatch:PutMetricAlarm", Scope::ScalingAlarms, "target tracking creates its alarms as the caller"),
    ("cloudwatch:DeleteAlarms", Scope::ScalingAlarms, "deleting a target-tracking policy deletes its alarms as the caller"),
    // The registry API (image push, promote --from), which the SDK does not
    // make: ECR's "Required IAM permissions for pushing an image".
    ("ecr:BatchCheckLayerAvailability", Scope::Repository, "image push: which layers the repository has"),
    ("ecr:InitiateLayerUpload", Scope::Repository, "image push: a layer upload"),
    ("ecr:UploadLayerPart", Scope::Repository, "image push: a layer upload"),
    ("ecr:CompleteLayerUpload", Scope::Repository, "image push: a layer upload"),
    ("ecr:GetDownloadUrlForLayer", Scope::Repository, "a release promotion reads the layers of what it copies"),
    ("ecr:BatchGetImage", Scope::PromotionSources, "a release promotion reads the source's manifest"),
    ("ecr:GetDownloadUrlForLayer", Scope::PromotionSources, "a release promotion reads the source's layers"),
    ("ecr:BatchCheckLayerAvailability", Scope::PromotionSources, "a release promotion reads the source's layers"),
    ("ecr:DescribeImages", Scope::PromotionSources, "a release promotion reads the source's image digest"),
];

/// The services whose service-linked roles a first deploy may create (ECS
/// explicitly; RDS, ELB and Application Auto Scaling on first use).
const SERVICE_LINKED: [&str; 4] = [
    "ecs.amazonaws.com",
    "rds.amazonaws.com",
    "elasticloadbalancing.amazonaws.com",
    "ecs.application-autoscaling.amazonaws.com",
];

#[derive(Debug, Serialize)]
pub struct Generated {
    pub policy: Value,
    /// `"<service> <operation>"` → IAM action, for every operation poolside calls.
    pub operations: BTreeMap<String, String>,
}

/// EC2 actions only a network poolside makes needs: in the customer's VPC
/// (`[network] vpc_id`) the policy leaves them out, so the role cannot
/// change or delete the customer's VPC, subnets, gateways or routes.
const OWNED_NETWORK_ONLY: &[&str] = &[
    "ec2:AllocateAddress",
    "ec2:AssociateRouteTable",
    "ec2:AttachInternetGateway",
    "ec2:CreateInternetGateway",
    "ec2:CreateNatGateway",
    "ec2:CreateRoute",
    "ec2:CreateRouteTable",
    "ec2:CreateSubnet",
    "ec2:CreateVpc",
    "ec2:DeleteInternetGateway",
    "ec2:DeleteNatGateway",
    "ec2:DeleteRoute",
    "ec2:DeleteRouteTable",
    "ec2:DeleteSubnet",
    "ec2:DeleteVpc",
    "ec2:DetachInternetGateway",
    "ec2:DisassociateAddress",
    "ec2:DisassociateRouteTable",
    "ec2:ModifyVpcAttribute",
    "ec2:ReleaseAddress",
    "ec2:ReplaceRoute",
    "ec2:ReplaceRouteTableAssociation",
];

/// The resources of one scope, as IAM ARNs.
fn resources(
    scope: Scope,
    config: &Config,
    account: &AccountFacts,
    sources: &[String],
) -> Vec<String> {
    let (partition, region, id, env) = (
        &account.partition,
        &config.region,
        &account.account_id,
        &config.name,
    );
    let arn = |service: &str, region: &str, rest: String| {
        format!("arn:{partition}:{service}:{region}:{id}:{rest}")
    };
    let db = crate::names::database_identifier(config);
    let cluster = crate::names::cluster_name(config);
    let bucket = blueprint::bucket_name(config, account);
    let state = crate::state::Store::bucket_name(id, region);
    match scope {
        Scope::Any => vec!["*".into()],
        Scope::Roles
        | Scope::RolesManagedPolicy
        | Scope::RolesPermissions
        | Scope::RolesBoundaryRemoval
        | Scope::PassRoles => {
            vec![arn("iam", "", format!("role/poolside-{env}-*"))]
        }
        Scope::ServiceLinkedRoles => vec![arn("iam", "", "role/aws-service-role/*".into())],
        Scope::Secrets => vec![arn(
            "secretsmanager",
            region,
            format!("secret:poolside/{env}/*"),
        )],
        Scope::RdsManagedSecret => vec![arn("secretsmanager", region, "secret:rds!db-*".into())],
        Scope::LogGroup => [
            format!("log-group:/poolside/{env}/*"),
            format!("log-group:/poolside/{env}/*:*"),
        ]
        .map(|rest| arn("logs", region, rest))
        .into(),
        Scope::Repository => vec![arn(
            "ecr",
            region,
            format!("repository/{}", config.registry.repository_name),
        )],
        // The artifacts bucket, and the state bucket that holds the lock and history.
        Scope::Bucket => vec![
            format!("arn:{partition}:s3:::{bucket}"),
            format!("arn:{partition}:s3:::{state}"),
        ],
        Scope::BucketObjects => vec![
            format!("arn:{partition}:s3:::{bucket}/*"),
            format!("arn:{partition}:s3:::{state}/locks/{env}.json"),
            format!("arn:{partition}:s3:::{state}/history/{env}/*"),
            format!("arn:{partition}:s3:::{state}/domains/{env}.json"),
        ],
        Scope::Database => [
            format!("db:{db}"),
            format!("pg:{db}-*"),
            format!("subgrp:{db}"),
            format!("snapshot:{db}-final-*"),
            format!("snapshot:{db}-before-*"),
        ]
        .map(|rest| arn("rds", region, rest))
        .into(),
        Scope::LoadBalancer => [
            format!("loadbalancer/app/poolside-{env}/*"),
            format!("listener/app/poolside-{env}/*"),
            format!("listener-rule/app/poolside-{env}/*"),
            format!("targetgroup/poolside-{env}/*"),
            // The alternate target group of traffic shifts.
            format!("targetgroup/poolside-{env}-a/*"),
        ]
        .map(|rest| arn("elasticloadbalancing", region, rest))
        .into(),
        Scope::Ecs => [
            format!("cluster/{cluster}"),
            format!("service/{cluster}/*"),
            format!("task-definition/poolside-{env}-api:*"),
            format!("task-definition/poolside-{env}-schema:*"),
            format!("task/{cluster}/*"),
        ]
        .map(|rest| arn("ecs", region, rest))
        .into(),
        Scope::Alarms => vec![arn(
            "cloudwatch",
            region,
            format!("alarm:{}*", crate::names::alarm_prefix(config)),
        )],
        Scope::Dashboard => vec![arn("cloudwatch", "", format!("dashboard/poolside-{env}"))],
        Scope::HostedZone | Scope::HostedZoneChanges => vec![format!(
            "arn:{partition}:route53:::hostedzone/{}",
            config.api.hosted_zone_id.as_deref().unwrap_or("*")
        )],
        Scope::Route53Changes => vec![format!("arn:{partition}:route53:::change/*")],
        // Application Auto Scaling checks these on the caller when it takes
        // a target-tracking policy ("permission validation"), and its
        // documentation names no alarm it checks them on: a grant scoped to
        // its `TargetTracking-service/...` names could be refused there.
        Scope::ScalingAlarms => vec![arn("cloudwatch", region, "alarm:*".into())],
        Scope::PromotionSources => sources
            .iter()
            .map(|name| arn("ecr", region, format!("repository/{name}")))
            .collect(),
    }
}

/// The policy for `config`. `promotion_sources`: the repositories of the
/// environments a release may be promoted from (same account and region),
/// which it may read.
pub fn generate(
    config: &Config,
    account: &AccountFacts,
    promotion_sources: &[String],
) -> Generated {
    let boundary = config.permissions_boundary();
    generate_bounded(config, account, promotion_sources, boundary.as_deref())
}

/// [`generate`] with the permissions boundary the roles poolside makes must
/// carry: `poolside onboarding` names the one its template makes before the
/// file names the role.
pub fn generate_bounded(
    config: &Config,
    account: &AccountFacts,
    promotion_sources: &[String],
    boundary: Option<&str>,
) -> Generated {
    let in_customer_network = matches!(config.network.layout, crate::config::Layout::Existing(_));
    let mut by_scope: BTreeMap<Scope, Vec<&str>> = BTreeMap::new();
    for (_, _, action, scope) in OPERATIONS {
        if in_customer_network && OWNED_NETWORK_ONLY.contains(action) {
            continue;
        }
        by_scope.entry(*scope).or_default().push(action);
    }
    for (action, scope, _) in IMPLIED {
        by_scope.entry(*scope).or_default().push(action);
    }
    if promotion_sources.is_empty() {
        by_scope.remove(&Scope::PromotionSources);
    }
    if boundary.is_some() {
        by_scope.remove(&Scope::RolesBoundaryRemoval);
    }
    let statements: Vec<Value> = by_scope
        .into_iter()
        .map(|(scope, mut actions)| {
            actions.sort();
            actions.dedup();
            let mut statement = json!({
                "Sid": format!("{scope:?}"),
                "Effect": "Allow",
                "Action": actions,
                "Resource": resources(scope, config, account, promotion_sources),
            });
            if let Some(condition) = condition(scope, account, boundary) {
                statement["Condition"] = condition;
            }
            statement
        })
        .collect();
    Generated {
        policy: json!({ "Version": "2012-10-17", "Statement": statements }),
        operations: OPERATIONS
            .iter()
            .map(|(service, operation, action, _)| {
                (format!("{service} {operation}"), action.to_string())
            })
            .collect(),
    }
}

/// The condition a scope's statement carries, if any.
fn condition(scope: Scope, account: &AccountFacts, boundary: Option<&str>) -> Option<Value> {
    let bounded = |mut condition: Value| {
        if let Some(boundary) = boundary {
            condition["StringEquals"] = json!({ "iam:PermissionsBoundary": boundary });
        }
        condition
    };
    match scope {
        Scope::ServiceLinkedRoles => {
            Some(json!({ "StringEquals": { "iam:AWSServiceName": SERVICE_LINKED } }))
        }
        // Only the alias A record, the TXT record naming its owner and ACM's
        // validation CNAME. The key exists for ChangeResourceRecordSets
        // alone, so this statement holds no other action.
        Scope::HostedZoneChanges => Some(json!({ "ForAllValues:StringEquals": {
            "route53:ChangeResourceRecordSetsRecordTypes": ["A", "TXT", "CNAME"]
        } })),
        Scope::RolesManagedPolicy => Some(bounded(json!({ "ArnEquals": { "iam:PolicyARN": [
            crate::names::load_balancers_infrastructure_policy(&account.partition)
        ] } }))),
        Scope::RolesPermissions => boundary.map(|_| bounded(json!({}))),
        Scope::PassRoles => Some(
            json!({ "StringEquals": { "iam:PassedToService": ["ecs-tasks.amazonaws.com", "ecs.amazonaws.com"] } }),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_listed_once_with_an_action_of_its_service() {
        let mut seen = std::collections::BTreeSet::new();
        for (service, operation, action, _) in OPERATIONS {
            assert!(
                seen.insert((service, operation)),
                "{service} {operation} twice"
            );
            let (prefix, name) = action.split_once(':').expect("prefix:Action");
            assert!(
                !prefix.is_empty() && name.starts_with(char::is_uppercase),
                "{action}"
            );
        }
    }

    #[test]
    fn the_policy_names_this_environment_and_not_others() {
        let text = "name = \"acme\"\nregion = \"eu-west-1\"\nphase = \"pilot\"\n[network]\nvpc_cidr = \"10.1.0.0/16\"\n\
             availability_zones = [\"eu-west-1a\", \"eu-west-1b\"]\nallowed_ingress_cidrs = [\"203.0.113.0/24\"]\n";
        let config = crate::config::parse("acme.toml", "acme", text.to_string()).unwrap();
        let account = AccountFacts::example();
        let generated = generate(&config, &account, &[]);
        let statements = generated.policy["Statement"].as_array().unwrap();
        let roles = statements.iter().find(|s| s["Sid"] == "Roles").unwrap();
        assert_eq!(
            roles["Resource"],
            json!(["arn:aws:iam::111122223333:role/poolside-acme-*"])
        );
        let pass = statements.iter().find(|s| s["Sid"] == "PassRoles").unwrap();
        assert_eq!(pass["Action"], json!(["iam:PassRole"]));
        assert_eq!(
            pass["Condition"]["StringEquals"]["iam:PassedToService"],
            json!(["ecs-tasks.amazonaws.com", "ecs.amazonaws.com"])
        );
        let secrets = statements.iter().find(|s| s["Sid"] == "Secrets").unwrap();
        assert_eq!(
            secrets["Resource"],
            json!(["arn:aws:secretsmanager:eu-west-1:111122223333:secret:poolside/acme/*"])
        );
        let linked = statements
            .iter()
            .find(|s| s["Sid"] == "ServiceLinkedRoles")
            .unwrap();
        assert_eq!(
            linked["Condition"]["StringEquals"]["iam:AWSServiceName"][0],
            "ecs.amazonaws.com"
        );
        // Only the EC2 network, reads and the unscopable few are on `*`.
        let any = statements.iter().find(|s| s["Sid"] == "Any").unwrap();
        for action in any["Action"].as_array().unwrap() {
            let action = action.as_str().unwrap();
            assert!(
                action.starts_with("ec2:")
                    || action.contains(":Describe")
                    || action.contains(":List")
                    || action.starts_with("application-autoscaling:")
                    || action.starts_with("acm:")
                    || action.starts_with("ecs:")
                    || action == "sts:GetCallerIdentity"
                    || action == "tag:GetResources"
                    || action == "ecr:GetAuthorizationToken"
                    || action == "ecs:RegisterTaskDefinition",
                "{action} is on every resource"
            );
        }
    }

    /// What a first review against AWS's documentation found denied: the
    /// domains object discovery reads, the registry API of image push and
    /// of a release promotion's source, the RDS-managed secret's value, the
    /// alarms target tracking makes as the caller, and a Route 53 condition
    /// on actions that do not have its key.
    #[test]
    fn the_policy_allows_what_a_review_found_denied() {
        let text = "name = \"acme\"\nregion = \"eu-west-1\"\nphase = \"limited\"\n[network]\nvpc_cidr = \"10.1.0.0/16\"\n\
             availability_zones = [\"eu-west-1a\", \"eu-west-1b\"]\nallowed_ingress_cidrs = [\"203.0.113.0/24\"]\n\
             [api]\ndomain_name = \"api.acme.example\"\nhosted_zone_id = \"Z123\"\n";
        let config = crate::config::parse("acme.toml", "acme", text.to_string()).unwrap();
        let account = AccountFacts::example();
        let generated = generate(&config, &account, &["poolside/acme-pilot/postgrest".into()]);
        let statements = generated.policy["Statement"].as_array().unwrap();
        let allowing = |action: &str, resource: &str| {
            statements.iter().any(|s| {
                s["Action"].as_array().unwrap().iter().any(|a| a == action)
                    && s["Resource"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|r| r == resource)
            })
        };
        let arn = "arn:aws:s3:::poolside-state-111122223333-eu-west-1/domains/acme.json";
        assert!(allowing("s3:GetObject", arn) && allowing("s3:PutObject", arn));
        let repository = "arn:aws:ecr:eu-west-1:111122223333:repository/poolside/acme/postgrest";
        for action in [
            "ecr:BatchCheckLayerAvailability",
            "ecr:InitiateLayerUpload",
            "ecr:UploadLayerPart",
            "ecr:CompleteLayerUpload",
            "ecr:PutImage",
            "ecr:BatchGetImage",
        ] {
            assert!(allowing(action, repository), "{action}");
        }
        assert!(allowing("ecr:GetAuthorizationToken", "*"));
        let source = "arn:aws:ecr:eu-west-1:111122223333:repository/poolside/acme-pilot/postgrest";
        for action in ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"] {
            assert!(
                allowing(action, source),
                "{action} on the promotion's source"
            );
        }
        assert!(allowing(
            "secretsmanager:GetSecretValue",
            "arn:aws:secretsmanager:eu-west-1:111122223333:secret:rds!db-*"
        ));
        let scaling = "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:*";
        assert!(allowing("cloudwatch:PutMetricAlarm", scaling));
        assert!(allowing("cloudwatch:DeleteAlarms", scaling));
        // The record-type key exists for ChangeResourceRecordSets alone.
        for statement in statements {
            if statement["Condition"]
                .to_string()
                .contains("ChangeResourceRecordSets")
            {
                assert_eq!(
                    statement["Action"],
                    json!(["route53:ChangeResourceRecordSets"]),
                    "{statement}"
                );
            }
        }
        assert!(allowing("route53:GetChange", "arn:aws:route53:::change/*"));
    }

    /// The one managed policy the blueprint attaches is the one the policy
    /// lets the operator attach; AdministratorAccess is not.
    #[test]
    fn only_the_managed_policy_poolside_attaches_may_be_attached() {
        let text = "name = \"acme\"\nregion = \"eu-west-1\"\nphase = \"limited\"\n[network]\nvpc_cidr = \"10.1.0.0/16\"\n\
             availability_zones = [\"eu-west-1a\", \"eu-west-1b\"]\nallowed_ingress_cidrs = [\"203.0.113.0/24\"]\n";
        let config = crate::config::parse("acme.toml", "acme", text.to_string()).unwrap();
        let account = AccountFacts::example();
        let generated = generate(&config, &account, &[]);
        let attach = generated.policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                s["Action"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a == "iam:AttachRolePolicy")
            })
            .unwrap();
        let allowed = attach["Condition"]["ArnEquals"]["iam:PolicyARN"].clone();
        let attached: Vec<String> = crate::blueprint::build(&config, &account)
            .unwrap()
            .into_iter()
            .filter_map(|d| match d.spec {
                crate::resources::spec::Spec::Role(role) => Some(role.managed_policies),
                _ => None,
            })
            .flatten()
            .collect();
        assert!(!attached.is_empty());
        assert_eq!(allowed, json!(attached), "{attach}");
        assert!(!allowed.to_string().contains("AdministratorAccess"));
        for statement in generated.policy["Statement"].as_array().unwrap() {
            if statement["Condition"].get("ArnEquals").is_none() {
                let actions = statement["Action"].to_string();
                assert!(!actions.contains("iam:AttachRolePolicy"), "{statement}");
            }
        }
    }

    /// In the customer's VPC the policy cannot change their network.
    #[test]
    fn in_the_customers_vpc_the_policy_cannot_change_their_network() {
        let text = "name = \"acme\"\nregion = \"eu-west-1\"\nphase = \"pilot\"\n[network]\nvpc_id = \"vpc-0a1b2c3d4e5f67890\"\n\
             public_subnet_ids = [\"subnet-00000001\", \"subnet-00000002\"]\nprivate_subnet_ids = [\"subnet-00000003\", \"subnet-00000004\"]\n\
             allowed_ingress_cidrs = [\"203.0.113.0/24\"]\n";
        let config = crate::config::parse("acme.toml", "acme", text.to_string()).unwrap();
        let account = AccountFacts::example();
        let policy = generate(&config, &account, &[]).policy.to_string();
        for action in OWNED_NETWORK_ONLY {
            assert!(!policy.contains(&format!("\"{action}\"")), "{action}");
        }
        for kept in [
            "ec2:CreateSecurityGroup",
            "ec2:CreateVpcEndpoint",
            "ec2:DeleteVpcEndpoints",
        ] {
            assert!(policy.contains(kept), "{kept}");
        }
    }
}
