#!/usr/bin/env python3
"""Which IAM authorizations AWS evaluates for one API request.

Test equipment for the IAM policy test: a proxy in front of moto hands every
request it sees to `authorizations(...)`, which answers with the (action,
resource ARN, condition context) triples AWS would evaluate for it, as the
Service Authorization Reference (SAR) defines actions, resource types and ARN
formats, plus the authorizations AWS evaluates on the caller's behalf (tag on
create, iam:PassRole, the resources a service creates as the caller, and so
on). A Rust test then evaluates each triple against the policy poolside
renders. Standard library only, one file, read top to bottom.

Sources. The SAR tables (actions, resource types, ARN formats, condition keys,
dependent actions) were read from the SAR pages as mirrored in
salesforce/policy_sentry (policy_sentry/shared/data/docs/list_*.html, 2026-06):
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_<service>.html
Every other claim cites the page it comes from. `# unverified:` marks what the
docs do not say; such entries also carry "unverified" in their dict.

Each returned dict has:
  call      "<signing name> <Operation>"
  action    "prefix:Action"
  resource  an ARN, or "*" when the action has no resource-level permissions
  context   {condition key: value or list of values}
and, only where they apply:
  unknown        True: an operation this module does not model
  any_of         [actions]: AWS accepts any one of these (the action included)
  only_if        text: AWS evaluates it only in a circumstance the request does
                 not show (e.g. a service-linked role that does not exist yet);
                 a test that cannot tell should treat it as evaluated
  unverified     text: the docs do not confirm this authorization
  always_allowed True: AWS documents that no permission is needed
Identifiers that do not exist before the call (a new VPC's id, a secret's
random suffix, a new scalable target's id) are written as `*` in the ARN, or
with the placeholders below.
"""

import re
import urllib.parse
import xml.etree.ElementTree as ET

# A secret's ARN ends in "-" and 6 random characters, unknown from a name alone.
SECRET_SUFFIX = "-AbCdEf"
ZERO_UUID = "00000000-0000-0000-0000-000000000000"

# SigV4 signing name -> IAM service prefix.
PREFIX = {
    "monitoring": "cloudwatch",
    "tagging": "tag",
}

# ---------------------------------------------------------------------------
# Request access
# ---------------------------------------------------------------------------

class Request:
    def __init__(self, service, operation, method, path, query, form, body_json,
                 region, account, raw_body):
        self.service = service
        self.op = operation
        self.method = (method or "").upper()
        self.path = path or "/"
        self.query = query or {}
        self.form = form or {}
        self.body = body_json if isinstance(body_json, dict) else {}
        self.region = region
        self.account = account
        self.raw_body = raw_body or b""
        self.partition = partition_of(region)

    def p(self, *names):
        """A scalar parameter, from the JSON body or the form."""
        for name in names:
            value = self.body.get(name)
            if value not in (None, ""):
                return value
            if self.form.get(name) not in (None, ""):
                return self.form[name]
        return None

    def lst(self, name):
        """A list parameter: a JSON list, or the form's `Name.N`,
        `Name.member.N` or `Name.<Locator>.N` (RDS: `SubnetIds.SubnetIdentifier.N`)."""
        value = self.body.get(name)
        if isinstance(value, list):
            return value
        rx = re.compile(r"^" + re.escape(name) + r"\.(?:[A-Za-z]+\.)?(\d+)$")
        found = []
        for key, v in self.form.items():
            m = rx.match(key)
            if m:
                found.append((int(m.group(1)), v))
        return [v for _, v in sorted(found)]

    def tags(self, *names):
        """Tags in the request: JSON dict, JSON list of {Key,Value}/{key,value},
        or form `Tags.member.N.Key` / `Tags.Tag.N.Key` (RDS) / `Tags.N.Key`."""
        names = names or ("Tags", "tags")
        for name in names:
            value = self.body.get(name)
            if isinstance(value, dict):
                return {str(k): str(v) for k, v in value.items()}
            if isinstance(value, list):
                out = {}
                for t in value:
                    if isinstance(t, dict):
                        key = t.get("Key", t.get("key"))
                        if key is not None:
                            out[str(key)] = str(t.get("Value", t.get("value", "")))
                return out
        out = {}
        for name in names:
            rx = re.compile(r"^" + re.escape(name) + r"\.(?:[A-Za-z]+\.)?(\d+)\.Key$")
            for key, v in self.form.items():
                if rx.match(key):
                    out[v] = self.form.get(key[:-len("Key")] + "Value", "")
        return out

    def tag_specs(self):
        """EC2 TagSpecification.N: [(ResourceType, {key: value})]."""
        specs = {}
        for key, v in self.form.items():
            m = re.match(r"^TagSpecifications?\.(\d+)\.ResourceType$", key)
            if m:
                specs.setdefault(int(m.group(1)), [None, {}])[0] = v
            m = re.match(r"^TagSpecifications?\.(\d+)\.Tags?\.(\d+)\.Key$", key)
            if m:
                value = self.form.get(key[:-len("Key")] + "Value", "")
                specs.setdefault(int(m.group(1)), [None, {}])[1][v] = value
        return [(t, tags) for _, (t, tags) in sorted(specs.items()) if t]

    def arn(self, service, resource, region=True, account=True):
        r = self.region if region else ""
        a = self.account if account else ""
        return f"arn:{self.partition}:{service}:{r}:{a}:{resource}"


def partition_of(region):
    if (region or "").startswith("cn-"):
        return "aws-cn"
    if (region or "").startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def tag_context(tags):
    """aws:RequestTag/<key> and aws:TagKeys for tags in the request."""
    if not tags:
        return {}
    ctx = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
    ctx["aws:TagKeys"] = sorted(tags)
    return ctx


def A(action, resource, context=None, **extra):
    entry = {"action": action, "resource": resource, "context": dict(context or {})}
    entry.update(extra)
    return entry


def truthy(value):
    return value is True or str(value).lower() == "true"


# ---------------------------------------------------------------------------
# S3 and Route 53: REST operations from method, path and query
# ---------------------------------------------------------------------------

_S3_BUCKET_SUBRESOURCES = {
    # subresource: (GET, PUT, DELETE)
    "versioning": ("GetBucketVersioning", "PutBucketVersioning", None),
    "lifecycle": ("GetBucketLifecycleConfiguration", "PutBucketLifecycleConfiguration",
                  "DeleteBucketLifecycle"),
    "encryption": ("GetBucketEncryption", "PutBucketEncryption", "DeleteBucketEncryption"),
    "policy": ("GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"),
    "tagging": ("GetBucketTagging", "PutBucketTagging", "DeleteBucketTagging"),
    "publicAccessBlock": ("GetPublicAccessBlock", "PutPublicAccessBlock",
                          "DeletePublicAccessBlock"),
    "ownershipControls": ("GetBucketOwnershipControls", "PutBucketOwnershipControls",
                          "DeleteBucketOwnershipControls"),
    "cors": ("GetBucketCors", "PutBucketCors", "DeleteBucketCors"),
    "acl": ("GetBucketAcl", "PutBucketAcl", None),
    "location": ("GetBucketLocation", None, None),
    "policyStatus": ("GetBucketPolicyStatus", None, None),
    "logging": ("GetBucketLogging", "PutBucketLogging", None),
    "notification": ("GetBucketNotificationConfiguration",
                     "PutBucketNotificationConfiguration", None),
    "object-lock": ("GetObjectLockConfiguration", "PutObjectLockConfiguration", None),
    "website": ("GetBucketWebsite", "PutBucketWebsite", "DeleteBucketWebsite"),
    "replication": ("GetBucketReplication", "PutBucketReplication", "DeleteBucketReplication"),
    "versions": ("ListObjectVersions", None, None),
    "uploads": ("ListMultipartUploads", None, None),
}


def s3_split(path):
    """Path-style `/bucket` or `/bucket/key` -> (bucket, key-or-None), key URL-decoded."""
    trimmed = (path or "/").lstrip("/")
    if not trimmed:
        return None, None
    bucket, _, key = trimmed.partition("/")
    return urllib.parse.unquote(bucket), (urllib.parse.unquote(key) if key else None)


def rest_operation(service, method, path, query):
    """The S3 or Route 53 API operation a REST request calls ('' if unknown)."""
    method = (method or "").upper()
    query = query or {}
    if service == "s3":
        bucket, key = s3_split(path)
        if bucket is None:
            return "ListBuckets" if method == "GET" else ""
        if key is None:
            if method == "HEAD":
                return "HeadBucket"
            if method == "POST" and "delete" in query:
                return "DeleteObjects"
            for sub, (get, put, delete) in _S3_BUCKET_SUBRESOURCES.items():
                if sub in query:
                    return {"GET": get, "PUT": put, "DELETE": delete}.get(method) or ""
            if method == "GET":
                return "ListObjectsV2" if query.get("list-type") == "2" else "ListObjects"
            return {"PUT": "CreateBucket", "DELETE": "DeleteBucket"}.get(method, "")
        if method == "HEAD":
            return "HeadObject"
        if method == "GET":
            if "tagging" in query:
                return "GetObjectTagging"
            if "acl" in query:
                return "GetObjectAcl"
            if "attributes" in query:
                return "GetObjectAttributes"
            if "uploadId" in query:
                return "ListParts"
            return "GetObject"
        if method == "PUT":
            if "tagging" in query:
                return "PutObjectTagging"
            if "acl" in query:
                return "PutObjectAcl"
            if "uploadId" in query and "partNumber" in query:
                return "UploadPart"
            return "PutObject"
        if method == "DELETE":
            if "tagging" in query:
                return "DeleteObjectTagging"
            if "uploadId" in query:
                return "AbortMultipartUpload"
            return "DeleteObject"
        if method == "POST":
            if "uploads" in query:
                return "CreateMultipartUpload"
            if "uploadId" in query:
                return "CompleteMultipartUpload"
            if "restore" in query:
                return "RestoreObject"
        return ""
    if service == "route53":
        parts = [p for p in (path or "").split("/") if p]
        if parts and re.match(r"^\d{4}-\d{2}-\d{2}$", parts[0]):
            parts = parts[1:]
        if not parts:
            return ""
        head = parts[0]
        if head == "hostedzone":
            if len(parts) == 1:
                return {"GET": "ListHostedZones", "POST": "CreateHostedZone"}.get(method, "")
            if len(parts) == 2:
                return {"GET": "GetHostedZone", "DELETE": "DeleteHostedZone",
                        "POST": "UpdateHostedZoneComment"}.get(method, "")
            if parts[2] == "rrset":
                return {"GET": "ListResourceRecordSets",
                        "POST": "ChangeResourceRecordSets"}.get(method, "")
            return ""
        if head == "change" and len(parts) == 2 and method == "GET":
            return "GetChange"
        if head == "hostedzonesbyname" and method == "GET":
            return "ListHostedZonesByName"
        if head == "hostedzonecount" and method == "GET":
            return "GetHostedZoneCount"
        if head == "tags" and len(parts) == 3:
            return {"GET": "ListTagsForResource", "POST": "ChangeTagsForResource"}.get(method, "")
        return ""
    return ""


def _xml_local(tag):
    return tag.rsplit("}", 1)[-1]


def _xml_children(element, name):
    return [c for c in element if _xml_local(c.tag) == name]


def _xml_text(element, name):
    for c in element:
        if _xml_local(c.tag) == name:
            return (c.text or "").strip()
    return None


def _xml_root(raw):
    if not raw:
        return None
    try:
        return ET.fromstring(raw)
    except ET.ParseError:
        return None


def route53_normalize(name):
    """route53:ChangeResourceRecordSetsNormalizedRecordNames: lower case, no
    trailing dot, \\ddd octal escapes replaced by the character. See
    https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/specifying-rrset-conditions.html"""
    name = re.sub(r"\\(\d{3})", lambda m: chr(int(m.group(1), 8)), name or "")
    return name.lower().rstrip(".")


# ---------------------------------------------------------------------------
# S3  (SAR: list_amazons3.html)
# ---------------------------------------------------------------------------

# API operation -> IAM action, for bucket-level operations.
S3_BUCKET_ACTIONS = {
    "CreateBucket": "s3:CreateBucket",
    "DeleteBucket": "s3:DeleteBucket",
    "HeadBucket": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "GetBucketLocation": "s3:GetBucketLocation",
    "GetBucketVersioning": "s3:GetBucketVersioning",
    "PutBucketVersioning": "s3:PutBucketVersioning",
    "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
    "DeleteBucketLifecycle": "s3:PutLifecycleConfiguration",
    "GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "DeleteBucketEncryption": "s3:PutEncryptionConfiguration",
    "GetBucketPolicy": "s3:GetBucketPolicy",
    "PutBucketPolicy": "s3:PutBucketPolicy",
    "DeleteBucketPolicy": "s3:DeleteBucketPolicy",
    "GetBucketPolicyStatus": "s3:GetBucketPolicyStatus",
    "GetBucketTagging": "s3:GetBucketTagging",
    "PutBucketTagging": "s3:PutBucketTagging",
    "DeleteBucketTagging": "s3:PutBucketTagging",
    "GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "DeletePublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "GetBucketOwnershipControls": "s3:GetBucketOwnershipControls",
    "PutBucketOwnershipControls": "s3:PutBucketOwnershipControls",
    "DeleteBucketOwnershipControls": "s3:PutBucketOwnershipControls",
    "GetBucketCors": "s3:GetBucketCORS",
    "PutBucketCors": "s3:PutBucketCORS",
    "DeleteBucketCors": "s3:PutBucketCORS",
    "GetBucketAcl": "s3:GetBucketAcl",
    "PutBucketAcl": "s3:PutBucketAcl",
    "GetBucketLogging": "s3:GetBucketLogging",
    "PutBucketLogging": "s3:PutBucketLogging",
    "GetBucketNotificationConfiguration": "s3:GetBucketNotification",
    "PutBucketNotificationConfiguration": "s3:PutBucketNotification",
    "GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
    "PutObjectLockConfiguration": "s3:PutBucketObjectLockConfiguration",
    "GetBucketWebsite": "s3:GetBucketWebsite",
    "PutBucketWebsite": "s3:PutBucketWebsite",
    "DeleteBucketWebsite": "s3:DeleteBucketWebsite",
    "GetBucketReplication": "s3:GetReplicationConfiguration",
    "PutBucketReplication": "s3:PutReplicationConfiguration",
    "DeleteBucketReplication": "s3:PutReplicationConfiguration",
}

# API operation -> (IAM action, IAM action when a versionId is given).
S3_OBJECT_ACTIONS = {
    "GetObject": ("s3:GetObject", "s3:GetObjectVersion"),
    "HeadObject": ("s3:GetObject", "s3:GetObjectVersion"),
    "GetObjectAttributes": ("s3:GetObjectAttributes", "s3:GetObjectVersionAttributes"),
    "PutObject": ("s3:PutObject", "s3:PutObject"),
    "DeleteObject": ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    "GetObjectTagging": ("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
    "PutObjectTagging": ("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
    "DeleteObjectTagging": ("s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"),
    "GetObjectAcl": ("s3:GetObjectAcl", "s3:GetObjectVersionAcl"),
    "PutObjectAcl": ("s3:PutObjectAcl", "s3:PutObjectVersionAcl"),
    # Multipart uploads are authorized as s3:PutObject on the object.
    "CreateMultipartUpload": ("s3:PutObject", "s3:PutObject"),
    "UploadPart": ("s3:PutObject", "s3:PutObject"),
    "CompleteMultipartUpload": ("s3:PutObject", "s3:PutObject"),
    "AbortMultipartUpload": ("s3:AbortMultipartUpload", "s3:AbortMultipartUpload"),
    "ListParts": ("s3:ListMultipartUploadParts", "s3:ListMultipartUploadParts"),
    "RestoreObject": ("s3:RestoreObject", "s3:RestoreObject"),
}


def s3_authorizations(r):
    op = r.op or rest_operation("s3", r.method, r.path, r.query)
    bucket, key = s3_split(r.path)
    bucket_arn = f"arn:{r.partition}:s3:::{bucket}"
    if op == "ListBuckets":
        return [A("s3:ListAllMyBuckets", "*")]
    if op in S3_BUCKET_ACTIONS:
        ctx = {}
        if op in ("ListObjects", "ListObjectsV2", "ListObjectVersions"):
            for param, cond in (("prefix", "s3:prefix"), ("delimiter", "s3:delimiter"),
                                ("max-keys", "s3:max-keys")):
                if param in r.query:
                    ctx[cond] = r.query[param]
        return [A(S3_BUCKET_ACTIONS[op], bucket_arn, ctx)]
    if op == "DeleteObjects":
        # SAR: DeleteObjects has no action of its own; S3 authorizes
        # s3:DeleteObject (or s3:DeleteObjectVersion with a VersionId) for each
        # key in the body. Without the body: both, on every object.
        root = _xml_root(r.raw_body)
        out = []
        if root is not None:
            for obj in _xml_children(root, "Object"):
                k = _xml_text(obj, "Key")
                if k is None:
                    continue
                version = _xml_text(obj, "VersionId")
                if version:
                    out.append(A("s3:DeleteObjectVersion", f"{bucket_arn}/{k}",
                                 {"s3:versionid": version}))
                else:
                    out.append(A("s3:DeleteObject", f"{bucket_arn}/{k}"))
        if not out:
            out = [A("s3:DeleteObject", f"{bucket_arn}/*"),
                   A("s3:DeleteObjectVersion", f"{bucket_arn}/*")]
        return out
    if op in S3_OBJECT_ACTIONS and key is not None:
        plain, versioned = S3_OBJECT_ACTIONS[op]
        version = r.query.get("versionId")
        ctx = {"s3:versionid": version} if version else {}
        out = [A(versioned if version else plain, f"{bucket_arn}/{key}", ctx)]
        if op in ("GetObject", "HeadObject"):
            # "If the object you request doesn't exist, the error that Amazon S3
            # returns depends on whether you also have the s3:ListBucket
            # permission ... 404 Not Found ... [else] 403 Access Denied."
            # https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html
            out.append(A("s3:ListBucket", bucket_arn,
                         only_if="the object does not exist (decides 404 against 403)"))
        # unverified: PutObject with an x-amz-tagging header also needs
        # s3:PutObjectTagging; headers are not given to this module.
        return out
    return None


# ---------------------------------------------------------------------------
# Route 53  (SAR: list_amazonroute53.html)
# ---------------------------------------------------------------------------

def route53_authorizations(r):
    op = r.op or rest_operation("route53", r.method, r.path, r.query)
    parts = [p for p in r.path.split("/") if p]
    if parts and re.match(r"^\d{4}-\d{2}-\d{2}$", parts[0]):
        parts = parts[1:]
    zone = lambda zid: f"arn:{r.partition}:route53:::hostedzone/{zid}"
    if op == "ChangeResourceRecordSets":
        ctx = {}
        root = _xml_root(r.raw_body)
        if root is not None:
            actions, names, types = [], [], []
            for change in root.iter():
                if _xml_local(change.tag) != "Change":
                    continue
                action = _xml_text(change, "Action")
                rrsets = _xml_children(change, "ResourceRecordSet")
                if action:
                    actions.append(action)
                for rrset in rrsets:
                    name, rtype = _xml_text(rrset, "Name"), _xml_text(rrset, "Type")
                    if name is not None:
                        names.append(route53_normalize(name))
                    if rtype:
                        types.append(rtype)
            # The three keys are multivalued (one value per change):
            # https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/specifying-rrset-conditions.html
            ctx = {
                "route53:ChangeResourceRecordSetsActions": sorted(set(actions)),
                "route53:ChangeResourceRecordSetsNormalizedRecordNames": sorted(set(names)),
                "route53:ChangeResourceRecordSetsRecordTypes": sorted(set(types)),
            }
        return [A("route53:ChangeResourceRecordSets", zone(parts[1]), ctx)]
    if op in ("ListResourceRecordSets", "GetHostedZone", "DeleteHostedZone",
              "UpdateHostedZoneComment"):
        return [A(f"route53:{op}", zone(parts[1]))]
    if op == "GetChange":
        # change* only; no record-set condition keys on this action.
        return [A("route53:GetChange", f"arn:{r.partition}:route53:::change/{parts[1]}")]
    if op in ("ListTagsForResource", "ChangeTagsForResource") and len(parts) == 3:
        return [A(f"route53:{op}", f"arn:{r.partition}:route53:::{parts[1]}/{parts[2]}")]
    if op in ("ListHostedZones", "ListHostedZonesByName", "GetHostedZoneCount",
              "CreateHostedZone"):
        # No resource types. (CreateHostedZone lists ec2:DescribeVpcs as a
        # dependent action, for private zones only; poolside makes none.)
        return [A(f"route53:{op}", "*")]
    return None


# ---------------------------------------------------------------------------
# EC2  (SAR: list_amazonec2.html)
# ---------------------------------------------------------------------------

EC2_ID_TYPES = [
    ("vpce-", "vpc-endpoint"), ("vpc-", "vpc"), ("subnet-", "subnet"),
    ("sgr-", "security-group-rule"), ("sg-", "security-group"),
    ("rtb-", "route-table"), ("igw-", "internet-gateway"),
    ("eigw-", "egress-only-internet-gateway"), ("nat-", "natgateway"),
    ("eipalloc-", "elastic-ip"), ("eni-", "network-interface"), ("i-", "instance"),
    ("acl-", "network-acl"), ("dopt-", "dhcp-options"), ("pl-", "prefix-list"),
    ("vol-", "volume"), ("snap-", "snapshot"), ("lt-", "launch-template"),
    ("key-", "key-pair"), ("vgw-", "vpn-gateway"), ("tgw-attach-", "transit-gateway-attachment"),
    ("tgw-", "transit-gateway"),
]


def ec2_arn(r, kind, ident="*"):
    return r.arn("ec2", f"{kind}/{ident}")


def ec2_arn_of_id(r, ident):
    if ident.startswith("ami-"):
        return f"arn:{r.partition}:ec2:{r.region}::image/{ident}"
    for prefix, kind in EC2_ID_TYPES:
        if ident.startswith(prefix):
            return ec2_arn(r, kind, ident)
    return ec2_arn(r, "unknown", ident)


# Operation -> (new resource type or None, [(request parameter, resource type)])
# from the SAR's resource-types column for each action.
EC2_ACTIONS = {
    "AllocateAddress": ("elastic-ip", []),
    "AssociateRouteTable": (None, [("RouteTableId", "route-table"), ("SubnetId", "subnet"),
                                   ("GatewayId", None)]),
    "AttachInternetGateway": (None, [("InternetGatewayId", "internet-gateway"),
                                     ("VpcId", "vpc")]),
    "DetachInternetGateway": (None, [("InternetGatewayId", "internet-gateway"),
                                     ("VpcId", "vpc")]),
    "AuthorizeSecurityGroupEgress": (None, [("GroupId", "security-group")]),
    "AuthorizeSecurityGroupIngress": (None, [("GroupId", "security-group")]),
    "RevokeSecurityGroupEgress": (None, [("GroupId", "security-group")]),
    "RevokeSecurityGroupIngress": (None, [("GroupId", "security-group")]),
    "CreateInternetGateway": ("internet-gateway", []),
    # SAR: natgateway*, elastic-ip, subnet, vpc (vpc: regional NAT gateways).
    "CreateNatGateway": ("natgateway", [("SubnetId", "subnet"), ("AllocationId", "elastic-ip"),
                                        ("VpcId", "vpc")]),
    "CreateRoute": (None, [("RouteTableId", "route-table")]),
    "ReplaceRoute": (None, [("RouteTableId", "route-table")]),
    "DeleteRoute": (None, [("RouteTableId", "route-table")]),
    "CreateRouteTable": ("route-table", [("VpcId", "vpc")]),
    "CreateSecurityGroup": ("security-group", [("VpcId", "vpc")]),
    "CreateSubnet": ("subnet", [("VpcId", "vpc")]),
    "CreateVpc": ("vpc", []),
    "CreateVpcEndpoint": ("vpc-endpoint", [("VpcId", "vpc"), ("RouteTableId.N", "route-table"),
                                           ("SecurityGroupId.N", "security-group"),
                                           ("SubnetId.N", "subnet")]),
    "ModifyVpcEndpoint": (None, [("VpcEndpointId", "vpc-endpoint"),
                                 ("AddRouteTableId.N", "route-table"),
                                 ("RemoveRouteTableId.N", "route-table"),
                                 ("AddSecurityGroupId.N", "security-group"),
                                 ("RemoveSecurityGroupId.N", "security-group"),
                                 ("AddSubnetId.N", "subnet"), ("RemoveSubnetId.N", "subnet")]),
    "DeleteVpcEndpoints": (None, [("VpcEndpointId.N", "vpc-endpoint")]),
    "DeleteInternetGateway": (None, [("InternetGatewayId", "internet-gateway")]),
    "DeleteNatGateway": (None, [("NatGatewayId", "natgateway")]),
    "DeleteRouteTable": (None, [("RouteTableId", "route-table")]),
    "DeleteSecurityGroup": (None, [("GroupId", "security-group")]),
    "DeleteSubnet": (None, [("SubnetId", "subnet")]),
    "DeleteVpc": (None, [("VpcId", "vpc")]),
    "DescribeVpcAttribute": (None, [("VpcId", "vpc")]),
    "ModifyVpcAttribute": (None, [("VpcId", "vpc")]),
    "ReleaseAddress": (None, [("AllocationId", "elastic-ip")]),
    "DisassociateAddress": (None, []),
    "ReplaceRouteTableAssociation": (None, [("RouteTableId", "route-table")]),
    "DisassociateRouteTable": (None, []),
}


def ec2_authorizations(r):
    op = r.op
    if op.startswith("Describe") and op != "DescribeVpcAttribute":
        # Every EC2 Describe* action has no resource types.
        return [A(f"ec2:{op}", "*")]
    if op in ("CreateTags", "DeleteTags"):
        tags = {}
        for key, v in r.form.items():
            m = re.match(r"^Tag\.(\d+)\.Key$", key)
            if m:
                tags[v] = r.form.get(f"Tag.{m.group(1)}.Value", "")
        ctx = tag_context(tags)
        if op == "DeleteTags" and tags:
            ctx = {"aws:TagKeys": sorted(tags)}
        return [A(f"ec2:{op}", ec2_arn_of_id(r, rid), ctx) for rid in r.lst("ResourceId")]
    if op not in EC2_ACTIONS:
        return None
    new_type, params = EC2_ACTIONS[op]
    specs = r.tag_specs()
    all_tags = {}
    for _, tags in specs:
        all_tags.update(tags)
    ctx = tag_context(all_tags)
    if op == "CreateVpcEndpoint" and r.p("ServiceName"):
        ctx["ec2:VpceServiceName"] = r.p("ServiceName")
    out = []
    if new_type:
        out.append(A(f"ec2:{op}", ec2_arn(r, new_type), ctx))
    for param, kind in params:
        values = r.lst(param[:-2]) if param.endswith(".N") else [r.p(param)]
        for value in values:
            if not value:
                continue
            arn = ec2_arn(r, kind, value) if kind else ec2_arn_of_id(r, value)
            out.append(A(f"ec2:{op}", arn, ctx if not new_type else {}))
    if op in ("AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress") and specs:
        # SAR: security-group-rule is a resource of the action when rules are tagged.
        out.append(A(f"ec2:{op}", ec2_arn(r, "security-group-rule"), ctx))
    if op == "DisassociateRouteTable":
        # unverified: the request names only the association (rtbassoc-); the SAR's
        # resource types (route-table, subnet, gateways) are all optional and the
        # ids cannot be known here.
        out.append(A("ec2:DisassociateRouteTable", ec2_arn(r, "route-table"), {},
                     unverified="route table of the association is not in the request"))
    if op == "DisassociateAddress":
        # unverified: the request names only the association (eipassoc-).
        out.append(A("ec2:DisassociateAddress", ec2_arn(r, "elastic-ip"), {},
                     unverified="elastic IP of the association is not in the request"))
    # Tag on create: "If tags are specified in the resource-creating action,
    # AWS performs additional authorization on the ec2:CreateTags action";
    # ec2:CreateAction names the creating action.
    # https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html
    for rtype, tags in specs:
        tctx = tag_context(tags)
        tctx["ec2:CreateAction"] = op
        out.append(A("ec2:CreateTags", ec2_arn(r, rtype), tctx))
    # unverified: the SAR lists ec2:DescribeSecurityGroups, ec2:DescribeSubnets,
    # ec2:DescribeVpcs and route53:AssociateVPCWithHostedZone as dependent actions
    # of CreateVpcEndpoint; no doc says they are evaluated as the caller. Left out.
    if not out:
        out.append(A(f"ec2:{op}", "*"))
    return out


# ---------------------------------------------------------------------------
# RDS  (SAR: list_amazonrds.html)
# ---------------------------------------------------------------------------

def rds_authorizations(r):
    op = r.op
    rds = lambda kind, name: r.arn("rds", f"{kind}:{name}")
    tags = r.tags("Tags")
    tctx = tag_context(tags)
    out = []

    def tag_on_create(arn):
        # SAR: rds:AddTagsToResource is a dependent action of CreateDBInstance,
        # CreateDBParameterGroup, CreateDBSubnetGroup and CreateDBSnapshot;
        # taken as evaluated on the new resource when the create carries Tags.
        if tags:
            out.append(A("rds:AddTagsToResource", arn, tctx))

    if op == "CreateDBInstance":
        db = rds("db", r.p("DBInstanceIdentifier"))
        ctx = dict(tctx)
        manage = truthy(r.p("ManageMasterUserPassword"))
        if r.p("ManageMasterUserPassword") is not None:
            ctx["rds:ManageMasterUserPassword"] = manage
        if r.p("PubliclyAccessible") is not None:
            ctx["rds:PubliclyAccessible"] = truthy(r.p("PubliclyAccessible"))
        out.append(A("rds:CreateDBInstance", db, ctx))
        # SAR resource types of CreateDBInstance: db*, cluster, og, pg, secgrp, subgrp.
        for param, kind in (("DBParameterGroupName", "pg"), ("DBSubnetGroupName", "subgrp"),
                            ("OptionGroupName", "og"), ("DBClusterIdentifier", "cluster")):
            if r.p(param):
                out.append(A("rds:CreateDBInstance", rds(kind, r.p(param))))
        tag_on_create(db)
        if manage:
            out.extend(rds_managed_secret(r))
        if r.p("MonitoringRoleArn"):
            # SAR: iam:PassRole is a dependent action of CreateDBInstance; the
            # Enhanced Monitoring role trusts monitoring.rds.amazonaws.com.
            # unverified: the iam:PassedToService value (poolside sets no such role).
            out.append(pass_role(r.p("MonitoringRoleArn"), "monitoring.rds.amazonaws.com"))
        return out
    if op == "ModifyDBInstance":
        db = rds("db", r.p("DBInstanceIdentifier"))
        ctx = {}
        if r.p("ManageMasterUserPassword") is not None:
            ctx["rds:ManageMasterUserPassword"] = truthy(r.p("ManageMasterUserPassword"))
        out.append(A("rds:ModifyDBInstance", db, ctx))
        for param, kind in (("DBParameterGroupName", "pg"), ("DBSubnetGroupName", "subgrp"),
                            ("OptionGroupName", "og")):
            if r.p(param):
                out.append(A("rds:ModifyDBInstance", rds(kind, r.p(param))))
        if truthy(r.p("ManageMasterUserPassword")):
            out.extend(rds_managed_secret(r))
        if truthy(r.p("RotateMasterUserPassword")):
            # SAR lists secretsmanager:RotateSecret as a dependent action.
            out.append(A("secretsmanager:RotateSecret", rds_secret_arn(r),
                         unverified="SAR dependent action; RDS docs do not say it is the caller's"))
        if r.p("MonitoringRoleArn"):
            out.append(pass_role(r.p("MonitoringRoleArn"), "monitoring.rds.amazonaws.com"))
        return out
    if op == "DeleteDBInstance":
        db = rds("db", r.p("DBInstanceIdentifier"))
        out.append(A("rds:DeleteDBInstance", db))
        snapshot = r.p("FinalDBSnapshotIdentifier")
        if snapshot and not truthy(r.p("SkipFinalSnapshot")):
            # The final snapshot is taken as the caller: SAR lists rds:CreateDBSnapshot
            # as a dependent action of DeleteDBInstance, and CreateDBSnapshot's
            # resource types are db* and snapshot*.
            out.append(A("rds:CreateDBSnapshot", db))
            out.append(A("rds:CreateDBSnapshot", rds("snapshot", snapshot)))
            # unverified: SAR also lists rds:AddTagsToResource (tags copied to the
            # final snapshot); whether it is evaluated as the caller is not documented.
        return out
    if op == "CreateDBSnapshot":
        out.append(A("rds:CreateDBSnapshot", rds("db", r.p("DBInstanceIdentifier")), tctx))
        snap = rds("snapshot", r.p("DBSnapshotIdentifier"))
        out.append(A("rds:CreateDBSnapshot", snap, tctx))
        tag_on_create(snap)
        return out
    if op == "RebootDBInstance":
        return [A("rds:RebootDBInstance", rds("db", r.p("DBInstanceIdentifier")))]
    if op == "DescribeDBInstances":
        # Optional db resource: the instance asked for, else every instance.
        return [A("rds:DescribeDBInstances", rds("db", r.p("DBInstanceIdentifier") or "*"))]
    if op == "CreateDBParameterGroup":
        pg = rds("pg", r.p("DBParameterGroupName"))
        out.append(A("rds:CreateDBParameterGroup", pg, tctx))
        tag_on_create(pg)
        return out
    if op in ("DeleteDBParameterGroup", "ModifyDBParameterGroup", "ResetDBParameterGroup",
              "DescribeDBParameters"):
        return [A(f"rds:{op}", rds("pg", r.p("DBParameterGroupName")))]
    if op == "DescribeDBParameterGroups":
        return [A("rds:DescribeDBParameterGroups", rds("pg", r.p("DBParameterGroupName") or "*"))]
    if op == "CreateDBSubnetGroup":
        sg = rds("subgrp", r.p("DBSubnetGroupName"))
        out.append(A("rds:CreateDBSubnetGroup", sg, tctx))
        tag_on_create(sg)
        return out
    if op in ("DeleteDBSubnetGroup", "ModifyDBSubnetGroup"):
        return [A(f"rds:{op}", rds("subgrp", r.p("DBSubnetGroupName")))]
    if op == "DescribeDBSubnetGroups":
        return [A("rds:DescribeDBSubnetGroups", rds("subgrp", r.p("DBSubnetGroupName") or "*"))]
    if op in ("AddTagsToResource", "RemoveTagsFromResource", "ListTagsForResource"):
        ctx = tctx if op == "AddTagsToResource" else {}
        if op == "RemoveTagsFromResource":
            keys = r.lst("TagKeys")
            ctx = {"aws:TagKeys": sorted(keys)} if keys else {}
        return [A(f"rds:{op}", r.p("ResourceName"), ctx)]
    if op in ("DescribeDBEngineVersions", "DescribeOrderableDBInstanceOptions",
              "DescribeEngineDefaultParameters", "DescribeAccountAttributes",
              "DescribePendingMaintenanceActions", "DescribeDBSnapshots"):
        return [A(f"rds:{op}", "*")]
    return None


def rds_secret_arn(r):
    # RDS names the master secret rds!db-<uuid>; Secrets Manager appends -XXXXXX.
    # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-secrets-manager.html
    return r.arn("secretsmanager", f"secret:rds!db-{ZERO_UUID}{SECRET_SUFFIX}")


def rds_managed_secret(r):
    # "Permissions required for Secrets Manager integration": the user needs
    # secretsmanager:CreateSecret and secretsmanager:TagResource; RDS creates and
    # tags the secret as the caller (also the SAR's dependent actions of
    # CreateDBInstance / ModifyDBInstance).
    # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-secrets-manager.html#rds-secrets-manager-permissions
    # unverified: KMS permissions are needed only for a customer managed key
    # (MasterUserSecretKmsKeyId); the default aws/secretsmanager key's policy
    # grants them. Not modelled.
    return [A("secretsmanager:CreateSecret", rds_secret_arn(r)),
            A("secretsmanager:TagResource", rds_secret_arn(r))]


def pass_role(role_arn, service):
    # "To pass a role (and its permissions) to an AWS service, a user must have
    # permissions to pass the role to the service."
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html
    return A("iam:PassRole", role_arn, {"iam:PassedToService": service})


# ---------------------------------------------------------------------------
# IAM  (SAR: list_awsidentityandaccessmanagementiam.html)
# ---------------------------------------------------------------------------

# Service-linked role names, for the services poolside may create one for.
# https://docs.aws.amazon.com/IAM/latest/UserGuide/using-service-linked-roles.html
SERVICE_LINKED_ROLE_NAMES = {
    "ecs.amazonaws.com": "AWSServiceRoleForECS",
    "rds.amazonaws.com": "AWSServiceRoleForRDS",
    "elasticloadbalancing.amazonaws.com": "AWSServiceRoleForElasticLoadBalancing",
    "ecs.application-autoscaling.amazonaws.com":
        "AWSServiceRoleForApplicationAutoScaling_ECSService",
}

IAM_ROLE_ACTIONS = {
    "AttachRolePolicy", "DeleteRole", "DeleteRolePolicy", "DetachRolePolicy", "GetRole",
    "GetRolePolicy", "ListAttachedRolePolicies", "ListRolePolicies", "PutRolePolicy",
    "TagRole", "UntagRole", "UpdateAssumeRolePolicy", "UpdateRole", "UpdateRoleDescription",
    "ListRoleTags", "ListInstanceProfilesForRole", "PutRolePermissionsBoundary",
    "DeleteRolePermissionsBoundary",
}


def iam_role_arn(r, name, path="/"):
    if name and name.startswith("arn:"):
        return name
    path = path or "/"
    if not path.endswith("/"):
        path += "/"
    return f"arn:{r.partition}:iam::{r.account}:role{path}{name}"


# The permissions boundary of each role, as the requests seen so far set it:
# iam:PermissionsBoundary on a request about an existing role is the
# boundary that role carries ("Filters access by the ARN of the policy used
# to set the permissions boundary", SAR list_awsidentityandaccessmanagementiam).
# The one piece of state here; a role made before it was started has none.
ROLE_BOUNDARIES = {}

# Requests that act on a role's permissions, where the key applies.
BOUNDED_BY_ROLE = {"AttachRolePolicy", "DetachRolePolicy", "PutRolePolicy", "DeleteRolePolicy",
                   "DeleteRolePermissionsBoundary"}


def iam_authorizations(r):
    op = r.op
    if op == "CreateRole":
        role = iam_role_arn(r, r.p("RoleName"), r.p("Path"))
        tags = r.tags("Tags")
        ctx = tag_context(tags)
        ROLE_BOUNDARIES.pop(r.p("RoleName"), None)
        if r.p("PermissionsBoundary"):
            ctx["iam:PermissionsBoundary"] = r.p("PermissionsBoundary")
            ROLE_BOUNDARIES[r.p("RoleName")] = r.p("PermissionsBoundary")
        out = [A("iam:CreateRole", role, ctx)]
        if tags:
            # Tags on CreateRole are authorized as iam:TagRole on the new role
            # ("user is not authorized to perform: iam:TagRole" from CreateRole).
            # https://docs.aws.amazon.com/IAM/latest/UserGuide/id_tags_roles.html
            out.append(A("iam:TagRole", role, tag_context(tags)))
        return out
    if op == "CreateServiceLinkedRole":
        service = r.p("AWSServiceName")
        name = SERVICE_LINKED_ROLE_NAMES.get(service, "*")
        if name != "*" and r.p("CustomSuffix"):
            name += "_" + r.p("CustomSuffix")
        arn = f"arn:{r.partition}:iam::{r.account}:role/aws-service-role/{service}/{name}"
        return [A("iam:CreateServiceLinkedRole", arn, {"iam:AWSServiceName": service})]
    if op in IAM_ROLE_ACTIONS:
        ctx = {}
        if op in ("AttachRolePolicy", "DetachRolePolicy") and r.p("PolicyArn"):
            ctx["iam:PolicyARN"] = r.p("PolicyArn")
        if op == "TagRole":
            ctx = tag_context(r.tags("Tags"))
        if op == "UntagRole" and r.lst("TagKeys"):
            ctx = {"aws:TagKeys": sorted(r.lst("TagKeys"))}
        name = r.p("RoleName")
        if op in BOUNDED_BY_ROLE and name in ROLE_BOUNDARIES:
            ctx["iam:PermissionsBoundary"] = ROLE_BOUNDARIES[name]
        if op == "PutRolePermissionsBoundary":
            ctx["iam:PermissionsBoundary"] = r.p("PermissionsBoundary")
            ROLE_BOUNDARIES[name] = r.p("PermissionsBoundary")
        if op == "DeleteRolePermissionsBoundary":
            ROLE_BOUNDARIES.pop(name, None)
        return [A(f"iam:{op}", iam_role_arn(r, name), ctx)]
    if op in ("ListRoles", "ListPolicies"):
        return [A(f"iam:{op}", "*")]
    if op in ("GetPolicy", "GetPolicyVersion", "ListPolicyVersions", "DeletePolicy"):
        return [A(f"iam:{op}", r.p("PolicyArn"))]
    return None


# ---------------------------------------------------------------------------
# ECS  (SAR: list_amazonelasticcontainerservice.html)
# ---------------------------------------------------------------------------

def ecs_cluster_name(cluster):
    if not cluster:
        return "default"
    if cluster.startswith("arn:"):
        return cluster.split(":cluster/", 1)[-1]
    return cluster


def ecs_cluster_arn(r, cluster):
    return r.arn("ecs", f"cluster/{ecs_cluster_name(cluster)}")


def ecs_service_arn(r, cluster, service):
    if service.startswith("arn:"):
        rest = service.split(":service/", 1)[-1]
        if "/" in rest:
            return service
        service = rest  # old-format ARN without the cluster
    return r.arn("ecs", f"service/{ecs_cluster_name(cluster)}/{service}")


def ecs_task_arn(r, cluster, task):
    if task.startswith("arn:"):
        return task
    return r.arn("ecs", f"task/{ecs_cluster_name(cluster)}/{task}")


def ecs_task_definition_arn(r, td):
    if td.startswith("arn:"):
        return td
    if ":" in td:
        return r.arn("ecs", f"task-definition/{td}")
    # A family alone means its latest ACTIVE revision, unknown here.
    return r.arn("ecs", f"task-definition/{td}:*")


def ecs_tag_on_create(r, arn, op, tags):
    # "If tags are specified in the resource-creating action, AWS performs
    # additional authorization ... include both the permissions to use the
    # action that creates the resource ... and the ecs:TagResource action";
    # ecs:CreateAction names the creating action.
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html
    if not tags:
        return []
    ctx = tag_context(tags)
    ctx["ecs:CreateAction"] = op
    return [A("ecs:TagResource", arn, ctx)]


def ecs_infrastructure_roles(r):
    """Roles a service definition passes to ECS itself (ecs.amazonaws.com)."""
    roles = []
    for lb in r.body.get("loadBalancers") or []:
        advanced = (lb or {}).get("advancedConfiguration") or {}
        if advanced.get("roleArn"):
            # The blue/green / canary / linear infrastructure role for load
            # balancers; its trust policy names the principal ecs.amazonaws.com,
            # so it is passed to that service.
            # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/AmazonECSInfrastructureRolePolicyForLoadBalancers.html
            roles.append(advanced["roleArn"])
    if r.body.get("role"):
        # The legacy load balancer service role ("allows Amazon ECS to make calls
        # to your load balancer on your behalf").
        roles.append(iam_role_arn(r, r.body["role"]))
    for vol in r.body.get("volumeConfigurations") or []:
        role = ((vol or {}).get("managedEBSVolume") or {}).get("roleArn")
        if role:
            # unverified: the EBS infrastructure role trusts ecs.amazonaws.com too.
            roles.append(role)
    for lattice in r.body.get("vpcLatticeConfigurations") or []:
        if (lattice or {}).get("roleArn"):
            # unverified: the VPC Lattice infrastructure role trusts ecs.amazonaws.com too.
            roles.append(lattice["roleArn"])
    return [pass_role(role, "ecs.amazonaws.com") for role in roles]


def ecs_authorizations(r):
    op = r.op
    b = r.body
    cluster = b.get("cluster")
    cluster_arn = ecs_cluster_arn(r, cluster)
    tags = r.tags("tags")
    if op == "CreateCluster":
        arn = ecs_cluster_arn(r, b.get("clusterName"))
        return [A("ecs:CreateCluster", arn, tag_context(tags))] + \
            ecs_tag_on_create(r, arn, op, tags)
    if op in ("DeleteCluster", "UpdateCluster", "UpdateClusterSettings",
              "PutClusterCapacityProviders", "ListContainerInstances", "ListAttributes"):
        return [A(f"ecs:{op}", cluster_arn)]
    if op == "DescribeClusters":
        return [A("ecs:DescribeClusters", ecs_cluster_arn(r, c))
                for c in (b.get("clusters") or ["default"])]
    if op in ("CreateService", "UpdateService"):
        name = b.get("serviceName") if op == "CreateService" else b.get("service")
        arn = ecs_service_arn(r, cluster, name)
        ctx = {"ecs:cluster": cluster_arn}
        if b.get("taskDefinition"):
            ctx["ecs:task-definition"] = ecs_task_definition_arn(r, b["taskDefinition"])
        if op == "CreateService":
            ctx.update(tag_context(tags))
        out = [A(f"ecs:{op}", arn, ctx)]
        if op == "CreateService":
            out += ecs_tag_on_create(r, arn, op, tags)
        out += ecs_infrastructure_roles(r)
        # unverified: deployment alarms, load balancers and service discovery are
        # used by ECS through its service-linked role; the ECS docs name no
        # extra caller permission (elasticloadbalancing:*, cloudwatch:*) for them.
        return out
    if op == "DeleteService":
        return [A("ecs:DeleteService", ecs_service_arn(r, cluster, b.get("service")),
                  {"ecs:cluster": cluster_arn})]
    if op == "DescribeServices":
        return [A("ecs:DescribeServices", ecs_service_arn(r, cluster, s),
                  {"ecs:cluster": cluster_arn}) for s in b.get("services") or []]
    if op == "ListServiceDeployments":
        return [A("ecs:ListServiceDeployments", ecs_service_arn(r, cluster, b.get("service")),
                  {"ecs:cluster": cluster_arn})]
    if op == "DescribeServiceDeployments":
        # SAR: service* and service-deployment*.
        out = []
        for dep in b.get("serviceDeploymentArns") or []:
            m = re.match(r"^(arn:[^:]+:ecs:[^:]*:[^:]*:)service-deployment/([^/]+)/([^/]+)/", dep)
            if m:
                out.append(A("ecs:DescribeServiceDeployments",
                             f"{m.group(1)}service/{m.group(2)}/{m.group(3)}"))
            out.append(A("ecs:DescribeServiceDeployments", dep))
        return out
    if op == "RegisterTaskDefinition":
        # SAR (2026): task-definition*. The new revision's number is unknown.
        arn = r.arn("ecs", f"task-definition/{b.get('family')}:*")
        out = [A("ecs:RegisterTaskDefinition", arn, tag_context(tags))]
        out += ecs_tag_on_create(r, arn, op, tags)
        for key in ("taskRoleArn", "executionRoleArn"):
            if b.get(key):
                # Task and execution roles are assumed by ecs-tasks.amazonaws.com.
                # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html
                # unverified: the SAR lists iam:PassRole as a dependent action of
                # RunTask/StartTask, not RegisterTaskDefinition; registering with
                # roles is nonetheless refused without it in practice.
                out.append(pass_role(b[key], "ecs-tasks.amazonaws.com"))
        return out
    if op in ("DeregisterTaskDefinition", "DescribeTaskDefinition", "ListTaskDefinitions",
              "ListTaskDefinitionFamilies", "ListClusters", "ListAccountSettings"):
        return [A(f"ecs:{op}", "*")]
    if op == "ListServices":
        return [A("ecs:ListServices", "*", {"ecs:cluster": cluster_arn})]
    if op == "DeleteTaskDefinitions":
        return [A("ecs:DeleteTaskDefinitions", ecs_task_definition_arn(r, td))
                for td in b.get("taskDefinitions") or []]
    if op == "RunTask":
        out = [A("ecs:RunTask", ecs_task_definition_arn(r, b.get("taskDefinition") or ""),
                 dict(tag_context(tags), **{"ecs:cluster": cluster_arn}))]
        out += ecs_tag_on_create(r, r.arn("ecs", f"task/{ecs_cluster_name(cluster)}/*"), op, tags)
        overrides = b.get("overrides") or {}
        for key in ("taskRoleArn", "executionRoleArn"):
            if overrides.get(key):
                out.append(pass_role(overrides[key], "ecs-tasks.amazonaws.com"))
        # unverified: the SAR lists iam:PassRole as a dependent action of RunTask
        # for the task definition's own roles; they are not in the request.
        return out
    if op == "StopTask":
        return [A("ecs:StopTask", ecs_task_arn(r, cluster, b.get("task")),
                  {"ecs:cluster": cluster_arn})]
    if op == "DescribeTasks":
        return [A("ecs:DescribeTasks", ecs_task_arn(r, cluster, t), {"ecs:cluster": cluster_arn})
                for t in b.get("tasks") or []]
    if op in ("TagResource", "UntagResource", "ListTagsForResource"):
        ctx = tag_context(tags) if op == "TagResource" else {}
        if op == "UntagResource" and b.get("tagKeys"):
            ctx = {"aws:TagKeys": sorted(b["tagKeys"])}
        return [A(f"ecs:{op}", b.get("resourceArn"), ctx)]
    return None


# ---------------------------------------------------------------------------
# ECR  (SAR: list_amazonelasticcontainerregistry.html)
# ---------------------------------------------------------------------------

ECR_REPOSITORY_ACTIONS = {
    "BatchCheckLayerAvailability", "BatchDeleteImage", "BatchGetImage",
    "CompleteLayerUpload", "DeleteLifecyclePolicy", "DeleteRepository",
    "DeleteRepositoryPolicy", "DescribeImages", "DescribeImageScanFindings",
    "GetDownloadUrlForLayer", "GetLifecyclePolicy", "GetLifecyclePolicyPreview",
    "GetRepositoryPolicy", "InitiateLayerUpload", "ListImages", "PutImage",
    "PutImageScanningConfiguration", "PutImageTagMutability", "PutLifecyclePolicy",
    "SetRepositoryPolicy", "StartImageScan", "StartLifecyclePolicyPreview", "UploadLayerPart",
}


def ecr_repository_arn(r, name):
    account = r.body.get("registryId") or r.account
    return f"arn:{r.partition}:ecr:{r.region}:{account}:repository/{name}"


def ecr_authorizations(r):
    op, b = r.op, r.body
    if op == "GetAuthorizationToken":
        return [A("ecr:GetAuthorizationToken", "*")]
    if op == "CreateRepository":
        arn = ecr_repository_arn(r, b.get("repositoryName"))
        tags = r.tags("tags")
        out = [A("ecr:CreateRepository", arn, tag_context(tags))]
        if tags:
            # SAR: ecr:TagResource is a dependent action of CreateRepository.
            out.append(A("ecr:TagResource", arn, tag_context(tags)))
        return out
    if op == "DescribeRepositories":
        names = b.get("repositoryNames") or ["*"]
        return [A("ecr:DescribeRepositories", ecr_repository_arn(r, n)) for n in names]
    if op in ECR_REPOSITORY_ACTIONS:
        return [A(f"ecr:{op}", ecr_repository_arn(r, b.get("repositoryName")))]
    if op in ("TagResource", "UntagResource", "ListTagsForResource"):
        ctx = tag_context(r.tags("tags")) if op == "TagResource" else {}
        return [A(f"ecr:{op}", b.get("resourceArn"), ctx)]
    return None


# ---------------------------------------------------------------------------
# Secrets Manager  (SAR: list_awssecretsmanager.html)
# ---------------------------------------------------------------------------

def secret_arn(r, secret_id):
    if secret_id.startswith("arn:"):
        return secret_id
    return r.arn("secretsmanager", f"secret:{secret_id}{SECRET_SUFFIX}")


def secretsmanager_authorizations(r):
    op, b = r.op, r.body
    if op == "CreateSecret":
        arn = secret_arn(r, b.get("Name"))
        tags = r.tags("Tags")
        ctx = dict(tag_context(tags), **{"secretsmanager:Name": b.get("Name")})
        out = [A("secretsmanager:CreateSecret", arn, ctx)]
        if tags:
            # "Required permissions: secretsmanager:CreateSecret. If you include
            # tags in the secret, you also need secretsmanager:TagResource."
            # https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html
            out.append(A("secretsmanager:TagResource", arn, tag_context(tags)))
        return out
    if op in ("ListSecrets", "GetRandomPassword", "BatchGetSecretValue"):
        return [A(f"secretsmanager:{op}", "*")]
    if b.get("SecretId"):
        ctx = tag_context(r.tags("Tags")) if op == "TagResource" else {}
        if op == "UntagResource" and b.get("TagKeys"):
            ctx = {"aws:TagKeys": sorted(b["TagKeys"])}
        return [A(f"secretsmanager:{op}", secret_arn(r, b["SecretId"]), ctx)]
    return None


# ---------------------------------------------------------------------------
# CloudWatch Logs  (SAR: list_amazoncloudwatchlogs.html)
# ---------------------------------------------------------------------------

def log_group_name(value):
    """A log group name or ARN (with or without the trailing :*) -> name."""
    if value and value.startswith("arn:"):
        value = value.split(":log-group:", 1)[-1]
        if value.endswith(":*"):
            value = value[:-2]
    return value


def logs_authorizations(r):
    op, b = r.op, r.body
    group = log_group_name(b.get("logGroupName") or b.get("logGroupIdentifier"))
    # SAR's log-group ARN has no trailing ":*".
    # unverified: AWS may evaluate some log-group actions against
    # "log-group:<name>:*" (the ARN DescribeLogGroups returns); the SAR does not say so.
    group_arn = r.arn("logs", f"log-group:{group}")
    if op == "CreateLogGroup":
        tags = r.tags("tags")
        out = [A("logs:CreateLogGroup", group_arn, tag_context(tags))]
        if tags:
            # "To assign tags when you create a log group, you must have either
            # the logs:TagResource or logs:TagLogGroup permission."
            # https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html
            out.append(A("logs:TagResource", group_arn, tag_context(tags),
                         any_of=["logs:TagResource", "logs:TagLogGroup"]))
        return out
    if op in ("DescribeLogGroups", "DescribeQueries", "StartQuery", "GetQueryResults"):
        return [A(f"logs:{op}", "*")]
    if op in ("GetLogEvents", "PutLogEvents", "CreateLogStream", "DeleteLogStream"):
        stream = b.get("logStreamName")
        return [A(f"logs:{op}", r.arn("logs", f"log-group:{group}:log-stream:{stream}"))]
    if op in ("DeleteLogGroup", "PutRetentionPolicy", "DeleteRetentionPolicy",
              "DescribeLogStreams", "FilterLogEvents", "ListTagsLogGroup", "TagLogGroup",
              "UntagLogGroup", "AssociateKmsKey", "DisassociateKmsKey"):
        ctx = tag_context(r.tags("tags")) if op == "TagLogGroup" else {}
        return [A(f"logs:{op}", group_arn, ctx)]
    if op in ("TagResource", "UntagResource", "ListTagsForResource"):
        arn = b.get("resourceArn")
        if arn and ":log-group:" in arn and arn.endswith(":*"):
            arn = arn[:-2]
        ctx = tag_context(r.tags("tags")) if op == "TagResource" else {}
        return [A(f"logs:{op}", arn, ctx)]
    return None


# ---------------------------------------------------------------------------
# Elastic Load Balancing v2  (SAR: list_elasticloadbalancingv2.html)
# ---------------------------------------------------------------------------

def elb_tag_on_create(arn, op, tags):
    # "If tags are specified in the resource-creating action, additional
    # authorization is required on the elasticloadbalancing:AddTags action";
    # elasticloadbalancing:CreateAction names the creating action.
    # https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/tagging-resources-during-creation.html
    if not tags:
        return []
    ctx = tag_context(tags)
    ctx["elasticloadbalancing:CreateAction"] = op
    return [A("elasticloadbalancing:AddTags", arn, ctx)]


def elb_authorizations(r):
    op = r.op
    elb = lambda rest: r.arn("elasticloadbalancing", rest)
    tags = r.tags("Tags")
    if op.startswith("Describe"):
        # Every ELB v2 Describe* action has no resource types.
        return [A(f"elasticloadbalancing:{op}", "*")]
    if op == "CreateLoadBalancer":
        kind = {"network": "net", "gateway": "gwy"}.get(r.p("Type") or "application", "app")
        arn = elb(f"loadbalancer/{kind}/{r.p('Name')}/*")
        return [A("elasticloadbalancing:CreateLoadBalancer", arn, tag_context(tags))] + \
            elb_tag_on_create(arn, op, tags)
    if op == "CreateTargetGroup":
        arn = elb(f"targetgroup/{r.p('Name')}/*")
        return [A("elasticloadbalancing:CreateTargetGroup", arn, tag_context(tags))] + \
            elb_tag_on_create(arn, op, tags)
    if op == "CreateListener":
        # SAR: CreateListener acts on loadbalancer/app/ (the listener does not exist yet).
        lb = r.p("LoadBalancerArn")
        new = re.sub(r":loadbalancer/", ":listener/", lb) + "/*"
        return [A("elasticloadbalancing:CreateListener", lb, tag_context(tags))] + \
            elb_tag_on_create(new, op, tags)
    if op == "CreateRule":
        # SAR: CreateRule acts on listener/app* (the rule does not exist yet).
        listener = r.p("ListenerArn")
        new = re.sub(r":listener/", ":listener-rule/", listener) + "/*"
        return [A("elasticloadbalancing:CreateRule", listener, tag_context(tags))] + \
            elb_tag_on_create(new, op, tags)
    if op in ("AddTags", "RemoveTags"):
        ctx = tag_context(tags) if op == "AddTags" else {}
        if op == "RemoveTags" and r.lst("TagKeys"):
            ctx = {"aws:TagKeys": sorted(r.lst("TagKeys"))}
        return [A(f"elasticloadbalancing:{op}", arn, ctx) for arn in r.lst("ResourceArns")]
    if op == "SetRulePriorities":
        arns = [v for k, v in sorted(r.form.items())
                if re.match(r"^RulePriorities\.member\.\d+\.RuleArn$", k)]
        for item in r.body.get("RulePriorities") or []:
            arns.append(item.get("RuleArn"))
        return [A("elasticloadbalancing:SetRulePriorities", arn) for arn in arns]
    for param, ops in (
        ("LoadBalancerArn", ("DeleteLoadBalancer", "SetSecurityGroups", "SetSubnets",
                             "SetIpAddressType", "ModifyLoadBalancerAttributes")),
        ("ListenerArn", ("DeleteListener", "ModifyListener", "AddListenerCertificates",
                         "RemoveListenerCertificates")),
        ("RuleArn", ("DeleteRule", "ModifyRule")),
        ("TargetGroupArn", ("DeleteTargetGroup", "ModifyTargetGroup",
                            "ModifyTargetGroupAttributes", "RegisterTargets",
                            "DeregisterTargets")),
    ):
        if op in ops:
            return [A(f"elasticloadbalancing:{op}", r.p(param))]
    return None


# ---------------------------------------------------------------------------
# CloudWatch  (signing name "monitoring"; SAR: list_amazoncloudwatch.html)
# ---------------------------------------------------------------------------

def cloudwatch_authorizations(r):
    op = r.op
    alarm = lambda name: r.arn("cloudwatch", f"alarm:{name}")
    dashboard = lambda name: f"arn:{r.partition}:cloudwatch::{r.account}:dashboard/{name}"
    if op == "PutMetricAlarm":
        tags = r.tags("Tags")
        ctx = tag_context(tags)
        actions = r.lst("AlarmActions")
        if actions:
            # unverified: which action lists feed cloudwatch:AlarmActions; AlarmActions used.
            ctx["cloudwatch:AlarmActions"] = actions
        arn = alarm(r.p("AlarmName"))
        out = [A("cloudwatch:PutMetricAlarm", arn, ctx)]
        if tags:
            # "To be able to associate tags with the alarm when you create the
            # alarm, you must have the cloudwatch:TagResource permission." (Tags
            # are ignored when the alarm exists; the request cannot show which.)
            # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html
            out.append(A("cloudwatch:TagResource", arn, tag_context(tags),
                         only_if="the alarm does not exist yet"))
        return out
    if op in ("DeleteAlarms", "EnableAlarmActions", "DisableAlarmActions"):
        return [A(f"cloudwatch:{op}", alarm(n)) for n in r.lst("AlarmNames")]
    if op == "DescribeAlarms":
        # SAR: alarm* (resource-level). unverified: the ARN AWS evaluates when no
        # AlarmNames are given (prefix or none) - taken to be every alarm.
        names = r.lst("AlarmNames")
        if names:
            return [A("cloudwatch:DescribeAlarms", alarm(n)) for n in names]
        return [A("cloudwatch:DescribeAlarms", alarm("*"))]
    if op in ("DescribeAlarmHistory", "SetAlarmState"):
        return [A(f"cloudwatch:{op}", alarm(r.p("AlarmName") or "*"))]
    if op in ("PutDashboard", "GetDashboard"):
        return [A(f"cloudwatch:{op}", dashboard(r.p("DashboardName")))]
    if op == "DeleteDashboards":
        return [A("cloudwatch:DeleteDashboards", dashboard(n)) for n in r.lst("DashboardNames")]
    if op in ("ListTagsForResource", "TagResource", "UntagResource"):
        ctx = tag_context(r.tags("Tags")) if op == "TagResource" else {}
        return [A(f"cloudwatch:{op}", r.p("ResourceARN"), ctx)]
    if op in ("GetMetricData", "GetMetricStatistics", "ListMetrics", "PutMetricData",
              "DescribeAlarmsForMetric", "ListDashboards"):
        return [A(f"cloudwatch:{op}", "*")]
    return None


# ---------------------------------------------------------------------------
# ACM  (SAR: list_awscertificatemanager.html)
# ---------------------------------------------------------------------------

def acm_authorizations(r):
    op, b = r.op, r.body
    if op == "RequestCertificate":
        tags = r.tags("Tags")
        ctx = tag_context(tags)
        domains = [b.get("DomainName")] + list(b.get("SubjectAlternativeNames") or [])
        ctx["acm:DomainNames"] = sorted({d for d in domains if d})
        if b.get("ValidationMethod"):
            ctx["acm:ValidationMethod"] = b["ValidationMethod"]
        out = [A("acm:RequestCertificate", "*", ctx)]
        if tags:
            # unverified: the ACM docs found do not say RequestCertificate's tags
            # are authorized as acm:AddTagsToCertificate (the pattern of the other
            # services); kept, on the new certificate (id unknown).
            out.append(A("acm:AddTagsToCertificate", r.arn("acm", "certificate/*"),
                         tag_context(tags), unverified="tag-on-create not documented for ACM"))
        return out
    if op in ("ListCertificates", "GetAccountConfiguration"):
        return [A(f"acm:{op}", "*")]
    if b.get("CertificateArn"):
        ctx = tag_context(r.tags("Tags")) if op == "AddTagsToCertificate" else {}
        return [A(f"acm:{op}", b["CertificateArn"], ctx)]
    return None


# ---------------------------------------------------------------------------
# Application Auto Scaling  (SAR: list_awsapplicationautoscaling.html)
# ---------------------------------------------------------------------------

# "Application Auto Scaling validates permissions for requests associated with
# both the target service and CloudWatch before proceeding with the request ...
# we issue a series of calls to validate the IAM permissions on target
# resources" (the example lists cloudwatch:PutMetricAlarm, DescribeAlarms and
# DeleteAlarms, called without alarm names).
# https://docs.aws.amazon.com/autoscaling/application/userguide/security_iam_permission_validation.html
# For ECS services the required target-service and CloudWatch actions are
# "ecs:DescribeServices, ecs:UpdateService, cloudwatch:DeleteAlarms,
# cloudwatch:DescribeAlarms, cloudwatch:PutMetricAlarm".
# https://docs.aws.amazon.com/autoscaling/application/userguide/security_iam_id-based-policy-examples.html
# The alarms of a target tracking policy are then created by the
# service-linked role (AWSApplicationAutoscalingECSServicePolicy grants it
# cloudwatch:PutMetricAlarm/DescribeAlarms/DeleteAlarms).
# https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSApplicationAutoscalingECSServicePolicy.html

def appautoscaling_authorizations(r):
    op, b = r.op, r.body
    target = r.arn("application-autoscaling", "scalable-target/*")  # id is random
    ctx = {}
    if b.get("ServiceNamespace"):
        ctx["application-autoscaling:service-namespace"] = b["ServiceNamespace"]
    if b.get("ScalableDimension"):
        ctx["application-autoscaling:scalable-dimension"] = b["ScalableDimension"]
    if op.startswith("Describe") or op == "GetPredictiveScalingForecast":
        return [A(f"application-autoscaling:{op}", "*")]
    if op in ("ListTagsForResource", "TagResource", "UntagResource"):
        tctx = tag_context(r.tags("Tags")) if op == "TagResource" else {}
        return [A(f"application-autoscaling:{op}", b.get("ResourceARN"), tctx)]
    if op not in ("RegisterScalableTarget", "DeregisterScalableTarget", "PutScalingPolicy",
                  "DeleteScalingPolicy", "PutScheduledAction", "DeleteScheduledAction"):
        return None
    tags = r.tags("Tags")
    out = [A(f"application-autoscaling:{op}", target,
             dict(ctx, **tag_context(tags)) if op == "RegisterScalableTarget" else ctx)]
    if op == "RegisterScalableTarget" and tags:
        # SAR: application-autoscaling:TagResource is a dependent action.
        out.append(A("application-autoscaling:TagResource", target, tag_context(tags)))
    ecs = b.get("ServiceNamespace") == "ecs" and (b.get("ResourceId") or "").startswith("service/")
    if not ecs:
        return out
    _, cluster, service = b["ResourceId"].split("/", 2)
    service_arn = r.arn("ecs", f"service/{cluster}/{service}")
    all_alarms = r.arn("cloudwatch", "alarm:*")
    validation = "the validation calls name no alarm; the ARN AWS evaluates is not documented"
    if op in ("RegisterScalableTarget", "PutScalingPolicy"):
        out += [
            A("ecs:DescribeServices", service_arn, {"ecs:cluster": r.arn("ecs", f"cluster/{cluster}")}),
            A("ecs:UpdateService", service_arn, {"ecs:cluster": r.arn("ecs", f"cluster/{cluster}")}),
            A("cloudwatch:PutMetricAlarm", all_alarms, unverified=validation),
            A("cloudwatch:DescribeAlarms", all_alarms, unverified=validation),
            A("cloudwatch:DeleteAlarms", all_alarms, unverified=validation),
        ]
    if op == "RegisterScalableTarget":
        # "Application Auto Scaling requires permissions to create a
        # service-linked role the first time any user in your account calls
        # RegisterScalableTarget for a given service."
        service_name = "ecs.application-autoscaling.amazonaws.com"
        out.append(A("iam:CreateServiceLinkedRole",
                     f"arn:{r.partition}:iam::{r.account}:role/aws-service-role/{service_name}/"
                     + SERVICE_LINKED_ROLE_NAMES[service_name],
                     {"iam:AWSServiceName": service_name},
                     only_if="the service-linked role does not exist yet"))
    if op == "PutScalingPolicy" and b.get("TargetTrackingScalingPolicyConfiguration"):
        # unverified: target tracking alarms are named
        # TargetTracking-<ResourceId>-AlarmHigh-<uuid> / -AlarmLow-<uuid>
        # (https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-target-tracking.html);
        # the managed policy above suggests the service-linked role creates them,
        # so these may never be evaluated against the caller.
        for which in ("AlarmHigh", "AlarmLow"):
            arn = r.arn("cloudwatch", f"alarm:TargetTracking-{b['ResourceId']}-{which}-{ZERO_UUID}")
            out.append(A("cloudwatch:PutMetricAlarm", arn,
                         unverified="alarms may be created by the service-linked role"))
            out.append(A("cloudwatch:DescribeAlarms", arn,
                         unverified="alarms may be created by the service-linked role"))
    if op in ("DeleteScalingPolicy", "DeregisterScalableTarget"):
        # unverified: that the policy's alarms are deleted (and validated) as the caller.
        for which in ("AlarmHigh", "AlarmLow"):
            arn = r.arn("cloudwatch", f"alarm:TargetTracking-{b['ResourceId']}-{which}-{ZERO_UUID}")
            out.append(A("cloudwatch:DeleteAlarms", arn,
                         unverified="alarms may be deleted by the service-linked role"))
        out.append(A("cloudwatch:DescribeAlarms", all_alarms, unverified=validation))
    return out


# ---------------------------------------------------------------------------
# STS and the Resource Groups Tagging API
# ---------------------------------------------------------------------------

def sts_authorizations(r):
    if r.op == "GetCallerIdentity":
        # "No permissions are required to perform this operation. If an
        # administrator attaches a policy to your identity that explicitly denies
        # access to the sts:GetCallerIdentity action, you can still perform this
        # operation." https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html
        return [A("sts:GetCallerIdentity", "*", always_allowed=True)]
    if r.op == "AssumeRole":
        return [A("sts:AssumeRole", r.p("RoleArn"))]
    return None


def tagging_authorizations(r):
    if r.op in ("GetResources", "GetTagKeys", "GetTagValues", "GetComplianceSummary"):
        # SAR: no resource types.
        return [A(f"tag:{r.op}", "*")]
    return None


HANDLERS = {
    "s3": s3_authorizations,
    "route53": route53_authorizations,
    "ec2": ec2_authorizations,
    "rds": rds_authorizations,
    "iam": iam_authorizations,
    "ecs": ecs_authorizations,
    "ecr": ecr_authorizations,
    "secretsmanager": secretsmanager_authorizations,
    "logs": logs_authorizations,
    "elasticloadbalancing": elb_authorizations,
    "cloudwatch": cloudwatch_authorizations,
    "acm": acm_authorizations,
    "application-autoscaling": appautoscaling_authorizations,
    "sts": sts_authorizations,
    "tag": tagging_authorizations,
}

def authorizations(service, operation, method, path, query, form, body_json, region, account,
                   raw_body=b""):
    """service: the SigV4 signing name from the Authorization header (ec2, s3, rds, iam, ecs,
    ecr, secretsmanager, logs, elasticloadbalancing, monitoring (=CloudWatch), sts, acm,
    route53, application-autoscaling, tagging). operation: the API operation name, e.g.
    'UpdateService' (for Query protocol the form's Action; for JSON protocol the part of
    X-Amz-Target after the dot; for S3 and Route 53 (REST protocols) '' - derived here from
    method, path and query). path: URL path without query; query: dict of the URL's query
    parameters (a valueless key maps to ''); form: dict of the form-encoded body (Query
    protocol, flattened keys like 'SubnetId.1', 'Tags.member.1.Key',
    'TagSpecification.1.Tag.1.Key'); body_json: the parsed JSON body (JSON protocols) or
    None; raw_body: the raw body, read for Route 53's ChangeResourceRecordSets (record types,
    names, actions) and S3's DeleteObjects (keys, versions).
    Returns a list of dicts: {"call": "<service> <Operation>", "action": "prefix:Action",
    "resource": "arn:..." or "*", "context": {condition key: value or list of values}}, with
    the optional keys described in the module docstring."""
    prefix = PREFIX.get(service, service)
    if service in ("s3", "route53") and not operation:
        operation = rest_operation(service, method, path, query)
    request = Request(service, operation or "", method, path, query, form, body_json,
                      region, account, raw_body)
    handler = HANDLERS.get(prefix)
    found = None
    if handler is not None and operation:
        try:
            found = handler(request)
        except (KeyError, AttributeError, TypeError, IndexError, ValueError):
            found = None  # a request shape this module does not understand
    call = f"{service} {operation or '?'}"
    if not found:
        return [{"call": call, "action": f"{prefix}:{operation or '?'}", "resource": "*",
                 "context": {}, "unknown": True}]
    return [dict({"call": call}, **entry) for entry in found]


# ---------------------------------------------------------------------------
# Self-check: python3 tests/aws_authorization.py
# ---------------------------------------------------------------------------

if __name__ == "__main__":
    R, ACCT = "us-east-1", "123456789012"

    def q(service, op, form=None, **kw):
        return authorizations(service, op, "POST", "/", {}, dict(form or {}, Action=op),
                              None, R, ACCT, **kw)

    def j(service, op, body):
        return authorizations(service, op, "POST", "/", {}, {}, body, R, ACCT)

    def rest(service, method, path, query=None, raw_body=b""):
        return authorizations(service, "", method, path, query or {}, {}, None, R, ACCT,
                              raw_body=raw_body)

    def pairs(result):
        return sorted((a["action"], a["resource"]) for a in result)

    def find(result, action, resource=None):
        hits = [a for a in result if a["action"] == action
                and (resource is None or a["resource"] == resource)]
        assert hits, f"{action} {resource} not in {pairs(result)}"
        return hits[0]

    checks = 0

    def check(cond, what):
        global checks
        assert cond, what
        checks += 1

    # --- REST operation names
    for (svc, m, p, qs), want in [
        (("s3", "GET", "/b", {"versioning": ""}), "GetBucketVersioning"),
        (("s3", "PUT", "/b", {"lifecycle": ""}), "PutBucketLifecycleConfiguration"),
        (("s3", "DELETE", "/b", {"lifecycle": ""}), "DeleteBucketLifecycle"),
        (("s3", "POST", "/b", {"delete": ""}), "DeleteObjects"),
        (("s3", "GET", "/b", {"versions": ""}), "ListObjectVersions"),
        (("s3", "GET", "/b", {"list-type": "2"}), "ListObjectsV2"),
        (("s3", "HEAD", "/b", {}), "HeadBucket"),
        (("s3", "PUT", "/b", {}), "CreateBucket"),
        (("s3", "GET", "/b/k", {}), "GetObject"),
        (("s3", "HEAD", "/b/k", {}), "HeadObject"),
        (("s3", "PUT", "/b/k/x.json", {}), "PutObject"),
        (("s3", "DELETE", "/b/k", {}), "DeleteObject"),
        (("s3", "GET", "/b", {"encryption": ""}), "GetBucketEncryption"),
        (("s3", "PUT", "/b", {"publicAccessBlock": ""}), "PutPublicAccessBlock"),
        (("s3", "DELETE", "/b", {"policy": ""}), "DeleteBucketPolicy"),
        (("s3", "PUT", "/b", {"tagging": ""}), "PutBucketTagging"),
        (("route53", "POST", "/2013-04-01/hostedzone/Z1/rrset/", {}), "ChangeResourceRecordSets"),
        (("route53", "GET", "/2013-04-01/hostedzone/Z1/rrset", {}), "ListResourceRecordSets"),
        (("route53", "GET", "/2013-04-01/change/C1", {}), "GetChange"),
        (("route53", "GET", "/2013-04-01/hostedzone/Z1", {}), "GetHostedZone"),
        (("route53", "GET", "/2013-04-01/hostedzone", {}), "ListHostedZones"),
        (("route53", "POST", "/2013-04-01/hostedzone", {}), "CreateHostedZone"),
    ]:
        check(rest_operation(svc, m, p, qs) == want, f"{svc} {m} {p} {qs} -> {want}")

    # 1. S3 path-style, IAM names differ from API names.
    check(pairs(rest("s3", "HEAD", "/state-b")) == [("s3:ListBucket", "arn:aws:s3:::state-b")], "HeadBucket")
    check(pairs(rest("s3", "GET", "/b", {"encryption": ""})) ==
          [("s3:GetEncryptionConfiguration", "arn:aws:s3:::b")], "GetBucketEncryption")
    check(pairs(rest("s3", "DELETE", "/b", {"lifecycle": ""})) ==
          [("s3:PutLifecycleConfiguration", "arn:aws:s3:::b")], "DeleteBucketLifecycle")
    check(pairs(rest("s3", "GET", "/b", {"publicAccessBlock": ""})) ==
          [("s3:GetBucketPublicAccessBlock", "arn:aws:s3:::b")], "GetPublicAccessBlock")
    res = rest("s3", "HEAD", "/b/locks/acme.json")
    check(pairs(res) == [("s3:GetObject", "arn:aws:s3:::b/locks/acme.json"),
                         ("s3:ListBucket", "arn:aws:s3:::b")], "HeadObject")
    check(find(res, "s3:ListBucket")["only_if"], "404 vs 403")
    check(pairs(rest("s3", "GET", "/b/k", {"versionId": "v1"}))[0] ==
          ("s3:GetObjectVersion", "arn:aws:s3:::b/k"), "GetObject versionId")
    check(pairs(rest("s3", "PUT", "/b/history/acme/2026%2001.json")) ==
          [("s3:PutObject", "arn:aws:s3:::b/history/acme/2026 01.json")], "PutObject decoded key")
    check(pairs(rest("s3", "GET", "/b", {"versions": ""})) ==
          [("s3:ListBucketVersions", "arn:aws:s3:::b")], "ListObjectVersions")
    # 2. DeleteObjects without and with the body.
    check(pairs(rest("s3", "POST", "/b", {"delete": ""})) ==
          [("s3:DeleteObject", "arn:aws:s3:::b/*"), ("s3:DeleteObjectVersion", "arn:aws:s3:::b/*")],
          "DeleteObjects no body")
    body = (b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a/1</Key>'
            b'<VersionId>v9</VersionId></Object><Object><Key>b</Key></Object></Delete>')
    check(pairs(rest("s3", "POST", "/b", {"delete": ""}, raw_body=body)) ==
          [("s3:DeleteObject", "arn:aws:s3:::b/b"), ("s3:DeleteObjectVersion", "arn:aws:s3:::b/a/1")],
          "DeleteObjects body")

    # 3. Route 53 REST with an XML body.
    xml = (b'<?xml version="1.0" encoding="UTF-8"?><ChangeResourceRecordSetsRequest '
           b'xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch><Changes>'
           b'<Change><Action>UPSERT</Action><ResourceRecordSet><Name>API.Example.com.</Name>'
           b'<Type>A</Type><AliasTarget><HostedZoneId>Z2</HostedZoneId><DNSName>lb.</DNSName>'
           b'<EvaluateTargetHealth>false</EvaluateTargetHealth></AliasTarget></ResourceRecordSet>'
           b'</Change><Change><Action>CREATE</Action><ResourceRecordSet><Name>_x.example.com.</Name>'
           b'<Type>CNAME</Type><TTL>300</TTL><ResourceRecords><ResourceRecord><Value>y.</Value>'
           b'</ResourceRecord></ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch>'
           b'</ChangeResourceRecordSetsRequest>')
    res = rest("route53", "POST", "/2013-04-01/hostedzone/Z123/rrset/", raw_body=xml)
    check(len(res) == 1 and res[0]["resource"] == "arn:aws:route53:::hostedzone/Z123", "rrset resource")
    check(res[0]["context"] == {
        "route53:ChangeResourceRecordSetsActions": ["CREATE", "UPSERT"],
        "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["_x.example.com", "api.example.com"],
        "route53:ChangeResourceRecordSetsRecordTypes": ["A", "CNAME"],
    }, res[0]["context"])
    res = rest("route53", "GET", "/2013-04-01/change/C42")
    check(res[0]["resource"] == "arn:aws:route53:::change/C42" and res[0]["context"] == {}, "GetChange")
    check(res[0]["call"] == "route53 GetChange", "call")

    # 4. ECS CreateService with a traffic-shifting role and tags.
    res = j("ecs", "CreateService", {
        "cluster": "poolside-acme", "serviceName": "api", "taskDefinition": "poolside-acme-api:3",
        "tags": [{"key": "poolside:env", "value": "acme"}],
        "loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/t/1",
                           "advancedConfiguration": {"roleArn": "arn:aws:iam::123456789012:role/poolside-acme-shift"}}]})
    svc_arn = "arn:aws:ecs:us-east-1:123456789012:service/poolside-acme/api"
    main = find(res, "ecs:CreateService", svc_arn)
    check(main["context"]["ecs:cluster"] == "arn:aws:ecs:us-east-1:123456789012:cluster/poolside-acme", "ecs:cluster")
    check(main["context"]["ecs:task-definition"] ==
          "arn:aws:ecs:us-east-1:123456789012:task-definition/poolside-acme-api:3", "task-definition")
    check(find(res, "ecs:TagResource", svc_arn)["context"]["ecs:CreateAction"] == "CreateService", "ecs tag")
    check(find(res, "iam:PassRole", "arn:aws:iam::123456789012:role/poolside-acme-shift")["context"] ==
          {"iam:PassedToService": "ecs.amazonaws.com"}, "PassRole infra role")
    # 5. ECS UpdateService with the role; RegisterTaskDefinition's roles.
    res = j("ecs", "UpdateService", {"cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/c", "service": "api",
                                     "loadBalancers": [{"advancedConfiguration": {"roleArn": "arn:aws:iam::123456789012:role/r"}}]})
    check(pairs(res) == [("ecs:UpdateService", "arn:aws:ecs:us-east-1:123456789012:service/c/api"),
                         ("iam:PassRole", "arn:aws:iam::123456789012:role/r")], pairs(res))
    res = j("ecs", "RegisterTaskDefinition", {"family": "poolside-acme-api",
                                              "taskRoleArn": "arn:aws:iam::123456789012:role/t",
                                              "executionRoleArn": "arn:aws:iam::123456789012:role/x",
                                              "tags": [{"key": "k", "value": "v"}]})
    check(find(res, "ecs:RegisterTaskDefinition")["resource"] ==
          "arn:aws:ecs:us-east-1:123456789012:task-definition/poolside-acme-api:*", "taskdef arn")
    check(all(a["context"] == {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
              for a in res if a["action"] == "iam:PassRole") and
          len([a for a in res if a["action"] == "iam:PassRole"]) == 2, "task roles")
    find(res, "ecs:TagResource")
    res = j("ecs", "DescribeServiceDeployments", {"serviceDeploymentArns": [
        "arn:aws:ecs:us-east-1:123456789012:service-deployment/c/api/abc"]})
    check(pairs(res) == [("ecs:DescribeServiceDeployments", "arn:aws:ecs:us-east-1:123456789012:service-deployment/c/api/abc"),
                         ("ecs:DescribeServiceDeployments", "arn:aws:ecs:us-east-1:123456789012:service/c/api")],
          "service deployments")
    check(pairs(j("ecs", "DeregisterTaskDefinition", {"taskDefinition": "x:1"})) ==
          [("ecs:DeregisterTaskDefinition", "*")], "deregister")
    check(pairs(j("ecs", "DeleteTaskDefinitions", {"taskDefinitions": ["x:1"]})) ==
          [("ecs:DeleteTaskDefinitions", "arn:aws:ecs:us-east-1:123456789012:task-definition/x:1")], "delete tds")

    # 6. RDS CreateDBInstance with a managed master password and tags (Query: Tags.Tag.N).
    res = q("rds", "CreateDBInstance", {
        "DBInstanceIdentifier": "poolside-acme", "ManageMasterUserPassword": "true",
        "DBParameterGroupName": "poolside-acme-16", "DBSubnetGroupName": "poolside-acme",
        "Tags.Tag.1.Key": "poolside:env", "Tags.Tag.1.Value": "acme"})
    db = "arn:aws:rds:us-east-1:123456789012:db:poolside-acme"
    secret = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-{ZERO_UUID}-AbCdEf"
    check(pairs(res) == sorted([
        ("rds:CreateDBInstance", db),
        ("rds:CreateDBInstance", "arn:aws:rds:us-east-1:123456789012:pg:poolside-acme-16"),
        ("rds:CreateDBInstance", "arn:aws:rds:us-east-1:123456789012:subgrp:poolside-acme"),
        ("rds:AddTagsToResource", db),
        ("secretsmanager:CreateSecret", secret),
        ("secretsmanager:TagResource", secret)]), pairs(res))
    check(find(res, "rds:AddTagsToResource")["context"]["aws:TagKeys"] == ["poolside:env"], "rds tags")
    check(find(res, "rds:CreateDBInstance", db)["context"]["rds:ManageMasterUserPassword"] is True, "mmup")
    # 7. DeleteDBInstance with a final snapshot.
    res = q("rds", "DeleteDBInstance", {"DBInstanceIdentifier": "d", "FinalDBSnapshotIdentifier": "d-final-1"})
    check(pairs(res) == [("rds:CreateDBSnapshot", "arn:aws:rds:us-east-1:123456789012:db:d"),
                         ("rds:CreateDBSnapshot", "arn:aws:rds:us-east-1:123456789012:snapshot:d-final-1"),
                         ("rds:DeleteDBInstance", "arn:aws:rds:us-east-1:123456789012:db:d")], pairs(res))
    check(pairs(q("rds", "DescribeDBInstances")) ==
          [("rds:DescribeDBInstances", "arn:aws:rds:us-east-1:123456789012:db:*")], "describe all")

    # 8. Application Auto Scaling target tracking.
    res = j("application-autoscaling", "PutScalingPolicy", {
        "ServiceNamespace": "ecs", "ResourceId": "service/poolside-acme/api",
        "ScalableDimension": "ecs:service:DesiredCount", "PolicyName": "cpu",
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 60}})
    main = find(res, "application-autoscaling:PutScalingPolicy",
                "arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/*")
    check(main["context"]["application-autoscaling:service-namespace"] == "ecs", "namespace")
    high = (f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:TargetTracking-service/poolside-acme/api"
            f"-AlarmHigh-{ZERO_UUID}")
    find(res, "cloudwatch:PutMetricAlarm", high)
    find(res, "cloudwatch:DescribeAlarms", high.replace("AlarmHigh", "AlarmLow"))
    find(res, "ecs:UpdateService", "arn:aws:ecs:us-east-1:123456789012:service/poolside-acme/api")
    res = j("application-autoscaling", "RegisterScalableTarget", {
        "ServiceNamespace": "ecs", "ResourceId": "service/c/api",
        "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 1, "MaxCapacity": 2})
    slr = find(res, "iam:CreateServiceLinkedRole")
    check(slr["resource"] == "arn:aws:iam::123456789012:role/aws-service-role/"
          "ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService"
          and slr["only_if"], "app autoscaling SLR")
    find(res, "ecs:DescribeServices", "arn:aws:ecs:us-east-1:123456789012:service/c/api")
    check(pairs(j("application-autoscaling", "DescribeScalableTargets", {"ServiceNamespace": "ecs"})) ==
          [("application-autoscaling:DescribeScalableTargets", "*")], "describe targets")

    # 9. EC2: creates with tag specifications, several resource types.
    res = q("ec2", "CreateSubnet", {"VpcId": "vpc-1", "CidrBlock": "10.0.0.0/24",
                                    "TagSpecification.1.ResourceType": "subnet",
                                    "TagSpecification.1.Tag.1.Key": "Name",
                                    "TagSpecification.1.Tag.1.Value": "a"})
    check(pairs(res) == [("ec2:CreateSubnet", "arn:aws:ec2:us-east-1:123456789012:subnet/*"),
                         ("ec2:CreateSubnet", "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-1"),
                         ("ec2:CreateTags", "arn:aws:ec2:us-east-1:123456789012:subnet/*")], pairs(res))
    check(find(res, "ec2:CreateTags")["context"] ==
          {"aws:RequestTag/Name": "a", "aws:TagKeys": ["Name"], "ec2:CreateAction": "CreateSubnet"}, "ec2 tags")
    res = q("ec2", "CreateNatGateway", {"SubnetId": "subnet-1", "AllocationId": "eipalloc-1"})
    check(pairs(res) == [("ec2:CreateNatGateway", "arn:aws:ec2:us-east-1:123456789012:elastic-ip/eipalloc-1"),
                         ("ec2:CreateNatGateway", "arn:aws:ec2:us-east-1:123456789012:natgateway/*"),
                         ("ec2:CreateNatGateway", "arn:aws:ec2:us-east-1:123456789012:subnet/subnet-1")], pairs(res))
    check(pairs(q("ec2", "AttachInternetGateway", {"InternetGatewayId": "igw-1", "VpcId": "vpc-1"})) ==
          [("ec2:AttachInternetGateway", "arn:aws:ec2:us-east-1:123456789012:internet-gateway/igw-1"),
           ("ec2:AttachInternetGateway", "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-1")], "attach igw")
    check(pairs(q("ec2", "AuthorizeSecurityGroupIngress", {"GroupId": "sg-1"})) ==
          [("ec2:AuthorizeSecurityGroupIngress", "arn:aws:ec2:us-east-1:123456789012:security-group/sg-1")], "sg")
    check(pairs(q("ec2", "CreateTags", {"ResourceId.1": "rtb-1", "ResourceId.2": "nat-2",
                                        "Tag.1.Key": "k", "Tag.1.Value": "v"})) ==
          [("ec2:CreateTags", "arn:aws:ec2:us-east-1:123456789012:natgateway/nat-2"),
           ("ec2:CreateTags", "arn:aws:ec2:us-east-1:123456789012:route-table/rtb-1")], "CreateTags")
    check(pairs(q("ec2", "DescribeVpcs")) == [("ec2:DescribeVpcs", "*")], "describe")
    res = q("ec2", "CreateVpcEndpoint", {"VpcId": "vpc-1", "ServiceName": "com.amazonaws.us-east-1.s3",
                                         "RouteTableId.1": "rtb-1", "RouteTableId.2": "rtb-2"})
    check(len(res) == 4 and find(res, "ec2:CreateVpcEndpoint",
          "arn:aws:ec2:us-east-1:123456789012:vpc-endpoint/*")["context"]["ec2:VpceServiceName"] ==
          "com.amazonaws.us-east-1.s3", pairs(res))

    # 10. IAM.
    res = q("iam", "CreateRole", {"RoleName": "poolside-acme-task", "AssumeRolePolicyDocument": "{}",
                                  "Tags.member.1.Key": "poolside:env", "Tags.member.1.Value": "acme"})
    check(pairs(res) == [("iam:CreateRole", "arn:aws:iam::123456789012:role/poolside-acme-task"),
                         ("iam:TagRole", "arn:aws:iam::123456789012:role/poolside-acme-task")], pairs(res))
    res = q("iam", "CreateServiceLinkedRole", {"AWSServiceName": "ecs.amazonaws.com"})
    check(res[0]["resource"] == "arn:aws:iam::123456789012:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS"
          and res[0]["context"] == {"iam:AWSServiceName": "ecs.amazonaws.com"}, "SLR")
    check(find(q("iam", "AttachRolePolicy", {"RoleName": "r", "PolicyArn": "arn:aws:iam::aws:policy/P"}),
               "iam:AttachRolePolicy")["context"] == {"iam:PolicyARN": "arn:aws:iam::aws:policy/P"}, "attach")

    # 11. ECR.
    check(pairs(j("ecr", "GetAuthorizationToken", {})) == [("ecr:GetAuthorizationToken", "*")], "ecr token")
    check(pairs(j("ecr", "PutImage", {"repositoryName": "poolside/api", "registryId": "999999999999"})) ==
          [("ecr:PutImage", "arn:aws:ecr:us-east-1:999999999999:repository/poolside/api")], "PutImage")
    res = j("ecr", "CreateRepository", {"repositoryName": "r", "tags": [{"Key": "k", "Value": "v"}]})
    check(pairs(res) == [("ecr:CreateRepository", "arn:aws:ecr:us-east-1:123456789012:repository/r"),
                         ("ecr:TagResource", "arn:aws:ecr:us-east-1:123456789012:repository/r")], "ecr create")

    # 12. Secrets Manager: names and ARNs.
    res = j("secretsmanager", "CreateSecret", {"Name": "poolside/acme/db", "Tags": [{"Key": "k", "Value": "v"}]})
    check(pairs(res) == [("secretsmanager:CreateSecret", "arn:aws:secretsmanager:us-east-1:123456789012:secret:poolside/acme/db-AbCdEf"),
                         ("secretsmanager:TagResource", "arn:aws:secretsmanager:us-east-1:123456789012:secret:poolside/acme/db-AbCdEf")],
          pairs(res))
    full = "arn:aws:secretsmanager:us-east-1:123456789012:secret:poolside/acme/db-Xy12Zw"
    check(pairs(j("secretsmanager", "GetSecretValue", {"SecretId": full})) ==
          [("secretsmanager:GetSecretValue", full)], "secret arn")
    check(pairs(j("secretsmanager", "PutSecretValue", {"SecretId": f"rds!db-{ZERO_UUID}"})) ==
          [("secretsmanager:PutSecretValue", secret)], "rds secret name")

    # 13. CloudWatch Logs.
    res = j("logs", "CreateLogGroup", {"logGroupName": "/poolside/acme/api", "tags": {"k": "v"}})
    lg = "arn:aws:logs:us-east-1:123456789012:log-group:/poolside/acme/api"
    check(pairs(res) == [("logs:CreateLogGroup", lg), ("logs:TagResource", lg)], pairs(res))
    check(find(res, "logs:TagResource")["any_of"] == ["logs:TagResource", "logs:TagLogGroup"], "any_of")
    check(pairs(j("logs", "GetLogEvents", {"logGroupName": "/g", "logStreamName": "s/1"})) ==
          [("logs:GetLogEvents", "arn:aws:logs:us-east-1:123456789012:log-group:/g:log-stream:s/1")], "stream")
    check(pairs(j("logs", "DescribeLogGroups", {"logGroupNamePrefix": "/poolside"})) ==
          [("logs:DescribeLogGroups", "*")], "describe lg")
    check(pairs(j("logs", "ListTagsForResource", {"resourceArn": lg + ":*"})) ==
          [("logs:ListTagsForResource", lg)], "list tags lg")

    # 14. ELB v2.
    res = q("elasticloadbalancing", "CreateLoadBalancer", {"Name": "poolside-acme", "Subnets.member.1": "subnet-1",
                                                           "Tags.member.1.Key": "k", "Tags.member.1.Value": "v"})
    lb_new = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/poolside-acme/*"
    check(pairs(res) == [("elasticloadbalancing:AddTags", lb_new),
                         ("elasticloadbalancing:CreateLoadBalancer", lb_new)], pairs(res))
    check(find(res, "elasticloadbalancing:AddTags")["context"]["elasticloadbalancing:CreateAction"] ==
          "CreateLoadBalancer", "elb create action")
    lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/poolside-acme/50dc6c495c0c9188"
    res = q("elasticloadbalancing", "CreateListener", {"LoadBalancerArn": lb, "Tags.member.1.Key": "k",
                                                       "Tags.member.1.Value": "v"})
    check(pairs(res) == [("elasticloadbalancing:AddTags", lb.replace(":loadbalancer/", ":listener/") + "/*"),
                         ("elasticloadbalancing:CreateListener", lb)], pairs(res))
    listener = lb.replace(":loadbalancer/", ":listener/") + "/f2f7dc8efc522ab2"
    check(pairs(q("elasticloadbalancing", "CreateRule", {"ListenerArn": listener, "Priority": "10"})) ==
          [("elasticloadbalancing:CreateRule", listener)], "CreateRule")
    check(pairs(q("elasticloadbalancing", "DescribeTargetHealth", {"TargetGroupArn": "x"})) ==
          [("elasticloadbalancing:DescribeTargetHealth", "*")], "elb describe")

    # 15. CloudWatch (signing name monitoring).
    res = q("monitoring", "PutMetricAlarm", {"AlarmName": "poolside-acme-api-cpu",
                                             "Tags.member.1.Key": "poolside:env", "Tags.member.1.Value": "acme"})
    alarm_arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:poolside-acme-api-cpu"
    check(pairs(res) == [("cloudwatch:PutMetricAlarm", alarm_arn), ("cloudwatch:TagResource", alarm_arn)], pairs(res))
    check(res[0]["call"] == "monitoring PutMetricAlarm", "call name")
    check(pairs(q("monitoring", "DeleteAlarms", {"AlarmNames.member.1": "a", "AlarmNames.member.2": "b"})) ==
          [("cloudwatch:DeleteAlarms", "arn:aws:cloudwatch:us-east-1:123456789012:alarm:a"),
           ("cloudwatch:DeleteAlarms", "arn:aws:cloudwatch:us-east-1:123456789012:alarm:b")], "delete alarms")
    check(pairs(q("monitoring", "PutDashboard", {"DashboardName": "poolside-acme"})) ==
          [("cloudwatch:PutDashboard", "arn:aws:cloudwatch::123456789012:dashboard/poolside-acme")], "dashboard")
    check(pairs(j("monitoring", "DeleteAlarms", {"AlarmNames": ["a"]})) ==
          [("cloudwatch:DeleteAlarms", "arn:aws:cloudwatch:us-east-1:123456789012:alarm:a")], "json cloudwatch")

    # 16. STS, tagging, ACM.
    res = q("sts", "GetCallerIdentity")
    check(pairs(res) == [("sts:GetCallerIdentity", "*")] and res[0]["always_allowed"], "sts")
    check(pairs(j("tagging", "GetResources", {"TagFilters": []})) == [("tag:GetResources", "*")], "tagging")
    cert = "arn:aws:acm:us-east-1:123456789012:certificate/1234"
    check(pairs(j("acm", "DescribeCertificate", {"CertificateArn": cert})) ==
          [("acm:DescribeCertificate", cert)], "acm describe")
    res = j("acm", "RequestCertificate", {"DomainName": "api.example.com", "ValidationMethod": "DNS",
                                          "Tags": [{"Key": "k", "Value": "v"}]})
    check(find(res, "acm:RequestCertificate", "*")["context"]["acm:DomainNames"] == ["api.example.com"], "acm req")
    find(res, "acm:AddTagsToCertificate", "arn:aws:acm:us-east-1:123456789012:certificate/*")

    # 17. Unknown operations are flagged.
    res = j("ecs", "FrobnicateCluster", {})
    check(res == [{"call": "ecs FrobnicateCluster", "action": "ecs:FrobnicateCluster", "resource": "*",
                   "context": {}, "unknown": True}], res)
    check(rest("s3", "POST", "/b", {"weird": ""})[0]["unknown"], "unknown s3")

    print(f"aws_authorization self-check: {checks} checks passed")
