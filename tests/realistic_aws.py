#!/usr/bin/env python3
"""A small proxy in front of moto that answers as AWS does where moto does not.

moto accepts what AWS refuses and is "available" at once. This proxy forwards
every request to moto unchanged, except for the AWS behaviours below, which it
plays the way the AWS documentation describes them (error codes, messages and
states). It is test equipment for tests/integration/real_aws.rs, not a product:
standard library only, one file, read top to bottom.

  RDS   ModifyDBParameterGroup refuses parameters customers cannot modify
        (cron.use_background_workers), with InvalidParameterValue.
  RDS   CreateDBInstance refuses retired minor versions (16.1-16.4), with
        InvalidParameterCombination; DescribeDBEngineVersions (moto: HTTP 500)
        answers with the family's default minor.
  RDS   a parameter group's new values are not visible to the first
        DescribeDBParameters after a change (eventual consistency).
  RDS   a new instance reads `creating` on create and for its first six
        seconds (at least its first describe);
        after ModifyDBInstance / RebootDBInstance the first describe still reads
        `available`, the next `modifying` / `rebooting` (`upgrading`, twice,
        for an engine upgrade).
  RDS   DescribeDBEngineVersions for one version lists the majors RDS offers
        from it (ValidUpgradeTarget); a ModifyDBInstance to another major is
        refused without AllowMajorVersionUpgrade, to a version not offered,
        or with a parameter group of the old family (InvalidParameterCombination);
        DescribeEngineDefaultParameters lists a family's extensions (rds.extensions).
  EC2   CreateNatGateway in a VPC without an attached internet gateway fails
        with Gateway.NotAttached; a new NAT gateway reads `pending` for its
        first second (at least its first describe).
  ELB   an internet-facing CreateLoadBalancer in such a VPC fails with InvalidSubnet.
  EC2   DeleteSubnet fails with DependencyViolation while a NAT gateway (not
        yet deleted), a load balancer or a VPC endpoint is still in the subnet
        (AWS: their network interfaces are; moto deletes the subnet anyway).
  ECS   CreateCluster / CreateService fail with "Unable to assume the service
        linked role" until ECS's service-linked role was created, and for two
        seconds after (IAM eventual consistency).
  ECS   an UpdateService that changes the task definition, the load
        balancers or the network configuration, or forces a new deployment,
        starts a service deployment (moto has none), and so does
        CreateService (the service's first, without alarms, a failed pull or
        traffic to shift: nothing ran before it): ListServiceDeployments and
        DescribeServiceDeployments report it, one lifecycle stage further on
        each describe, and DescribeServices reports its rollout IN_PROGRESS
        until it ends. From PRODUCTION_TRAFFIC_SHIFT on, a rollback alarm in
        ALARM rolls it back as ECS does. A canary or linear deployment shifts
        the production listener rule's weights as ECS does (a canary's share
        to the group that does not serve at PRODUCTION_TRAFFIC_SHIFT, or a
        linear deployment's steps there, one more on each describe; all of it
        at POST_PRODUCTION_TRAFFIC_SHIFT; back on a rollback), and its tasks
        are the targets of whichever group the rule sends traffic to. On a
        rollback the service returns to the previous
        task definition, and the deployment ends ROLLBACK_SUCCESSFUL naming
        the alarm. POST /__proxy/raise-during-shift {"alarm": NAME} makes
        the proxy set that alarm to ALARM when a deployment starts shifting
        production traffic (an alarm that fires mid-shift).

  ECS   RunTask starts a task the proxy runs (moto runs none), with its
        container overrides (command, environment; 8192 characters at most):
        DescribeTasks
        does not list it at first (MISSING: eventually consistent), then
        reports PENDING, RUNNING while its container runs, and STOPPED with
        the container's exit code. The container's command runs here as ECS
        would run it: its environment, its secrets resolved from Secrets
        Manager (`arn:...:json-key::`), no terminal; its output goes to the
        awslogs stream `<prefix>/<container>/<task id>`. PGHOST/PGPORT point
        at the PostgreSQL standing in for the instance (RDS's name does not
        resolve here), without TLS. POST /__proxy/tasks {"database":
        "HOST:PORT", "refuse_placement": N, "fail_pull": N} sets where that
        is, and makes the next N RunTasks fail to place (Fargate capacity)
        or their tasks fail to pull the image (CannotPullContainerError).
        {"fail_service_pull": N} makes the next N service deployments that
        have the circuit breaker with rollback fail the same way: at
        SCALE_UP the breaker triggers, the service returns to its previous
        task definition and the deployment reads ROLLBACK_IN_PROGRESS, then
        ROLLBACK_SUCCESSFUL, its circuit breaker TRIGGERED.

  RDS   a ModifyDBParameterGroup of a static parameter (ApplyMethod
        pending-reboot) leaves the instance's group `pending-reboot` in
        DescribeDBInstances (moto: always in-sync) until RebootDBInstance.
  RDS   DescribePendingMaintenanceActions (moto has none) lists, for the
        instance its filter names, the actions POST /__proxy/maintenance
        {"actions": [{"action", "description", "auto_applied_after", ...}]}
        sets (none by default); {"running_minor": "16.9"} makes
        DescribeDBInstances report that engine version, as after a minor
        upgrade RDS applied by itself.

  ECS   a service's tasks run: DescribeServices reports runningCount =
        desiredCount where moto leaves a new service at 0.
  ELB   DescribeTargetHealth of a target group an ECS service uses lists
        the service's tasks as targets (moto: none, as it runs no task):
        `initial` (Elb.InitialHealthChecking) while a deployment of the
        service is in progress and on the first read after, `healthy` then. POST /__proxy/targets {"unhealthy": true} makes
        them fail their health checks (Target.ResponseCodeMismatch).
        Draining is not played: ECS counts a deployment done only once its
        old targets have drained, and nothing reads targets before that.

  Teardown, and a second life (AWS releases what a delete frees slowly):
  RDS   a deleted instance reads `deleting` for a few seconds (moto: gone at
        once), holding its subnet group (InvalidDBSubnetGroupStateFault), its
        parameter group (InvalidDBParameterGroupState), its subnets and
        security groups (DependencyViolation); a second DeleteDBInstance is
        InvalidDBInstanceState, a CreateDBInstance of its name
        DBInstanceAlreadyExists.
  EC2   a deleted NAT gateway reads `deleting` for a moment and holds its
        subnet and Elastic IP (InvalidIPAddress.InUse); a deleted load
        balancer's or interface endpoint's network interfaces linger in its
        subnets and security groups for a few seconds.
  ECS   a deleted service is DRAINING for two describes; CreateService of its
        name meanwhile is refused.
  SM    CreateSecret of a name scheduled for deletion answers AWS's
        InvalidRequestException (moto: ResourceExistsException).
  ACM   RequestCertificate with an idempotency token used within the hour
        answers the certificate it made then, even a deleted one.

Every behaviour it plays is recorded; GET /__proxy/events returns them as JSON.
Where a state changes with time (an RDS instance available or deleted, a NAT
gateway available or deleted), the first describe after the change records a
`noticed` event: how many seconds after the change poolside looked
(localstack/bench.py --waits reports them).
Every request is also read as IAM would authorize it (tests/aws_authorization.py:
the action and resource ARN of each call, as the Service Authorization Reference
defines them, and what AWS checks on the caller's behalf);
GET /__proxy/authorizations returns them, for the test that holds
`poolside iam-policy` to them.

usage: realistic_aws.py PORT [UPSTREAM]   (UPSTREAM default http://127.0.0.1:4566)
"""

import http.client
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops connections when many
    # clients connect at once (a fleet's environments, a deploy's concurrent
    # calls): they then hang until their connect times out.
    request_queue_size = 128

UPSTREAM = urllib.parse.urlsplit(sys.argv[2] if len(sys.argv) > 2 else "http://127.0.0.1:4566")
RETIRED_MINORS = {"16.1", "16.2", "16.3", "16.4"}
DEFAULT_MINOR = {"14": "14.17", "15": "15.12", "16": "16.8", "17": "17.4"}
# The major upgrades RDS offers from each major (DescribeDBEngineVersions' ValidUpgradeTarget).
UPGRADE_TARGETS = {"14": ["15.12", "16.8"], "15": ["16.8", "17.2", "17.4"], "16": ["17.2", "17.4"], "17": []}
# Some of what a family's rds.extensions lists (DescribeEngineDefaultParameters).
FAMILY_EXTENSIONS = ["pg_cron", "pg_stat_statements", "postgis", "vector"]
NOT_MODIFIABLE = {"cron.use_background_workers"}
ROLE_SETTLES_AFTER_S = 2.0
INSTANCE_CREATING_S = 6.0   # RDS: 5-15 minutes on AWS
INSTANCE_DELETING_S = 4.0   # RDS: minutes on AWS
NAT_DELETING_S = 2.0        # EC2: a minute or two on AWS
NAT_PENDING_S = 1.0         # EC2: a minute or two on AWS
INTERFACES_LINGER_S = 3.0   # load balancer and endpoint ENIs: minutes on AWS
ACCOUNT = "123456789012"    # moto's

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aws_authorization  # noqa: E402

lock = threading.Lock()
events = []                 # what the proxy played, in order
authorizations = []         # what IAM would evaluate for each request, in order
instance_script = {}        # DB identifier -> statuses the next describes report
instance_created_at = {}    # DB identifier -> when CreateDBInstance passed through
stale_parameter_groups = set()
nat_pending = {}            # NAT gateway id -> [until when it reads pending, described since]
settling = {}               # (wait, resource) -> when its state changes (see noticed)
ecs_role_seen_at = None     # when CreateServiceLinkedRole(ecs) passed through
deployments = {}            # service deployment ARN -> what the proxy plays of it
raise_during_shift = set()  # alarms to set to ALARM when a shift starts
held = []                   # what a deleted resource still holds (see hold)
# A delete refused while something being deleted still holds the resource:
# (service, action) -> (held kind, form key, event, AWS code, AWS message, EC2 error shape).
HELD_REFUSALS = {
    ("ec2", "DeleteSubnet"): ("subnet", "SubnetId", "interfaces_linger", "DependencyViolation",
                              "The subnet '{id}' has dependencies and cannot be deleted.", True),
    ("ec2", "DeleteSecurityGroup"): ("security-group", "GroupId", "interfaces_linger", "DependencyViolation",
                                     "resource {id} has a dependent object", True),
    ("ec2", "ReleaseAddress"): ("allocation", "AllocationId", "address_still_held", "InvalidIPAddress.InUse",
                                "Address is in use.", True),
    ("rds", "DeleteDBSubnetGroup"): ("db-subnet-group", "DBSubnetGroupName", "db_group_still_used",
                                     "InvalidDBSubnetGroupStateFault",
                                     "Cannot delete the subnet group '{id}' because at least one database instance: {by} is still using it.",
                                     False),
    ("rds", "DeleteDBParameterGroup"): ("db-parameter-group", "DBParameterGroupName", "db_group_still_used",
                                        "InvalidDBParameterGroupState",
                                        "One or more database instances are still members of this parameter group {id}, so the group cannot be deleted",
                                        False),
}
deleting_instances = {}     # DB identifier -> (until, its last DescribeDBInstances answer)
nat_deleting = {}           # NAT gateway id -> until
draining_services = {}      # ECS service name -> describes left that read DRAINING
service_configuration = {}  # ECS service name -> its load balancers and network, as last sent
certificate_tokens = {}     # ACM idempotency token -> (arn, when)
tasks = {}                  # task ARN -> what the proxy plays of it (see run_task)
task_settings = {"database": None, "refuse_placement": 0, "fail_pull": 0, "fail_service_pull": 0}
target_settings = {"unhealthy": False}
pending_reboot_groups = set()  # parameter groups whose static changes wait for a reboot
# RDS's own plans for an instance: POST /__proxy/maintenance sets them.
maintenance_settings = {"actions": [], "running_minor": None}
health_reads = {}           # target group ARN -> reads since its service's last deployment
DEPLOYMENT_STAGES = ["PRE_SCALE_UP", "SCALE_UP", "POST_SCALE_UP", "PRODUCTION_TRAFFIC_SHIFT",
                     "POST_PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP"]
ECS_TARGET = "AmazonEC2ContainerServiceV20141113."


class Played(Exception):
    """An answer the proxy gives instead of moto's, decided after moto answered."""

    def __init__(self, answer):
        super().__init__()
        self.answer = answer


def record(kind, **details):
    with lock:
        events.append(dict(kind=kind, at=time.time(), **details))


def settles(wait, resource, at):
    """The state `wait` waits for comes to `resource` at time `at`."""
    with lock:
        settling[(wait, resource)] = at


def looked(wait, resource):
    """A describe of `resource` answered: the first one after its state
    changed records how long after the change poolside looked (the
    benchmark's "noticed within" figure)."""
    now = time.time()
    with lock:
        at = settling.get((wait, resource))
        if at is None or now < at:
            return
        del settling[(wait, resource)]
    record("noticed", wait=wait, resource=resource, after_s=round(now - at, 3))


def upstream(method, path, body=b"", headers=None):
    conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=60)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, response.getheaders(), data


def unsigned(service):
    """An Authorization header naming the service (moto does not check signatures)."""
    return f"AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"


def query(service, version, action, **params):
    """A Query-protocol call of the proxy's own to moto; the XML answer."""
    form = urllib.parse.urlencode(dict(Action=action, Version=version, **params))
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": unsigned(service)}
    return upstream("POST", "/", form.encode(), headers)[2].decode()


def ec2_query(action, **params):
    return query("ec2", "2016-11-15", action, **params)


def elb_query(action, **params):
    return query("elasticloadbalancing", "2015-12-01", action, **params)


def cloudwatch_query(action, **params):
    return query("monitoring", "2010-08-01", action, **params)


def igw_attached(subnet_id):
    subnets = ec2_query("DescribeSubnets", **{"SubnetId.1": subnet_id})
    vpc = re.search(r"<vpcId>([^<]+)</vpcId>", subnets)
    if not vpc:
        return True, None  # let moto answer for a subnet it does not know
    gateways = ec2_query(
        "DescribeInternetGateways",
        **{"Filter.1.Name": "attachment.vpc-id", "Filter.1.Value.1": vpc.group(1)},
    )
    return "<internetGatewayId>" in gateways, vpc.group(1)


def all_pages(call, action, token_element, token_parameter):
    """Every page of a describe call (moto pages them as AWS does), concatenated."""
    pages, params = [], {}
    while True:
        page = call(action, **params)
        pages.append(page)
        token = re.search(f"<{token_element}>([^<]+)</{token_element}>", page)
        if not token:
            return "".join(pages)
        params = {token_parameter: token.group(1)}


def hold(kind, ids, by, seconds):
    """`by` holds these for `seconds`, and refuses the first delete of each
    whatever the time: on AWS the interfaces go minutes later, so a deleter
    always meets them once."""
    until = time.time() + seconds
    with lock:
        for i in ids:
            if i:
                held.append(dict(kind=kind, id=i, by=by, until=until, refused=False))


def holder(kind, ident):
    now = time.time()
    with lock:
        for h in held:
            if h["kind"] == kind and h["id"] == ident and (h["until"] > now or not h["refused"]):
                h["refused"] = True
                return h["by"]
    return None


def rds_query(action, **params):
    return query("rds", "2014-10-31", action, **params)


def secrets_call(action, payload):
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "secretsmanager." + action,
               "Authorization": unsigned("secretsmanager")}
    return json.loads(upstream("POST", "/", json.dumps(payload).encode(), headers)[2] or b"{}")


def tags_in(text, element):
    return re.findall(f"<{element}>([^<]+)</{element}>", text)


def subnet_users(subnet_id):
    """What still has network interfaces in the subnet, as AWS would refuse its delete for."""
    users = []
    nats = all_pages(ec2_query, "DescribeNatGateways", "nextToken", "NextToken")
    for nat in re.findall(r"<item>\s*<createTime>.*?(?=<item>\s*<createTime>|</natGatewaySet>)", nats, flags=re.S):
        if f"<subnetId>{subnet_id}</subnetId>" in nat and "<state>deleted</state>" not in nat:
            users.append(re.search(r"<natGatewayId>([^<]+)</natGatewayId>", nat).group(1))
    for balancer in re.findall(r"<member>(\s*<LoadBalancerArn>.*?)</member>\s*(?=<member>\s*<LoadBalancerArn>|</LoadBalancers>)",
                               all_pages(elb_query, "DescribeLoadBalancers", "NextMarker", "Marker"), flags=re.S):
        if f"<SubnetId>{subnet_id}</SubnetId>" in balancer:
            users.append(re.search(r"<LoadBalancerName>([^<]+)</LoadBalancerName>", balancer).group(1))
    endpoints = all_pages(ec2_query, "DescribeVpcEndpoints", "nextToken", "NextToken")
    for endpoint in re.findall(r"<item>\s*<vpcEndpointId>.*?</item>\s*(?=<item>\s*<vpcEndpointId>|</vpcEndpointSet>)", endpoints, flags=re.S):
        if f"<item>{subnet_id}</item>" in endpoint and "<state>deleted</state>" not in endpoint.lower():
            users.append(re.search(r"<vpcEndpointId>([^<]+)</vpcEndpointId>", endpoint).group(1))
    return users


def ecs_call(action, payload):
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": ECS_TARGET + action,
        "Authorization": unsigned("ecs"),
    }
    return json.loads(upstream("POST", "/", json.dumps(payload).encode(), headers)[2] or b"{}")


def alarms_in_alarm(names):
    params = {f"AlarmNames.member.{i + 1}": n for i, n in enumerate(names)}
    xml = cloudwatch_query("DescribeAlarms", **params)
    found = []
    for alarm in re.findall(r"<member>(.*?)</member>", xml, re.S):
        name = re.search(r"<AlarmName>([^<]+)</AlarmName>", alarm)
        state = re.search(r"<StateValue>([^<]+)</StateValue>", alarm)
        if name and state and state.group(1) == "ALARM" and name.group(1) in names:
            found.append(name.group(1))
    return sorted(set(found))


def advance(arn):
    """One describe further on in the deployment's life, as ECS moves on."""
    with lock:
        d = deployments[arn]
        if d["status"] == "ROLLBACK_IN_PROGRESS":
            d["status"] = "ROLLBACK_SUCCESSFUL"
        if d["status"] != "IN_PROGRESS":
            return dict(d)
        # A linear deployment stays in PRODUCTION_TRAFFIC_SHIFT for every
        # step ("a lifecycle hook configured for PRODUCTION_TRAFFIC_SHIFT is
        # invoked on each production traffic shift step",
        # deployment-type-linear.html): one step more on each describe.
        stepping = (d["stage"] == "PRODUCTION_TRAFFIC_SHIFT" and d["strategy"] == "LINEAR"
                    and d["traffic"] and d["share"] < 100)
        if not stepping:
            d["stage_index"] += 1
        stage_index = d["stage_index"]
    if stage_index >= len(DEPLOYMENT_STAGES):
        with lock:
            d["status"], d["stage"] = "SUCCESSFUL", "CLEAN_UP"
        record("deployment_succeeded", service=d["service"])
        return dict(d)
    stage = DEPLOYMENT_STAGES[stage_index]
    if stage == "SCALE_UP" and d["pull_fails"]:
        # The new tasks stop with CannotPullContainerError as they start; the
        # circuit breaker counts them and, past its threshold, rolls back
        # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html),
        # ROLLBACK_IN_PROGRESS for a read, then ROLLBACK_SUCCESSFUL
        # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-deployment.html).
        ecs_call("UpdateService", {"cluster": d["cluster"], "service": d["service"], "taskDefinition": d["source"]})
        with lock:
            d["stage"], d["status"], d["breaker_triggered"] = stage, "ROLLBACK_IN_PROGRESS", True
            d["rollback_started"] = time.time()
        record("deployment_circuit_breaker", service=d["service"], target=d["target"])
        return dict(d)
    with lock:
        d["stage"] = stage
        shifting = stage_index >= DEPLOYMENT_STAGES.index("PRODUCTION_TRAFFIC_SHIFT")
        to_raise = [a for a in d["alarms"] if a in raise_during_shift] if stage == "PRODUCTION_TRAFFIC_SHIFT" else []
        raise_during_shift.difference_update(to_raise)
    record("deployment_stage", service=d["service"], stage=stage)
    if d["traffic"] and stage in ("PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"):
        shift(d, stage)
    for alarm in to_raise:
        cloudwatch_query("SetAlarmState", AlarmName=alarm, StateValue="ALARM", StateReason="raised by the proxy during the shift")
        record("alarm_raised_during_shift", alarm=alarm)
    if shifting and d["alarms"]:
        fired = alarms_in_alarm(d["alarms"])
        if fired:
            ecs_call("UpdateService", {"cluster": d["cluster"], "service": d["service"], "taskDefinition": d["source"]})
            if d["shifted"]:
                rule, (serving, new) = d["traffic"]["rule"], d["shifted"]
                set_weights(rule, [(serving, 100), (new, 0)])
                record("traffic_shifted", service=d["service"], weights={serving: 100, new: 0})
            with lock:
                d["status"], d["triggered"] = "ROLLBACK_SUCCESSFUL", fired
            record("deployment_rolled_back", service=d["service"], alarms=fired)
    with lock:
        return dict(d)


def revision_summary(d, task_definition, running):
    revision = abs(hash(task_definition)) % 10**12
    arn = d["service_arn"].replace(":service/", ":service-revision/") + f"/{revision}"
    return {"arn": arn, "requestedTaskCount": running, "runningTaskCount": running, "pendingTaskCount": 0}


def deployment_view(d):
    view = {
        "serviceDeploymentArn": d["arn"],
        "serviceArn": d["service_arn"],
        "clusterArn": d["cluster_arn"],
        "createdAt": d["created"],
        "status": d["status"],
        "lifecycleStage": d["stage"],
        # What runs before and what is deployed (API_ServiceRevisionSummary);
        # a new service's first deployment has no source.
        "sourceServiceRevisions": [revision_summary(d, d["source"], 0 if d["status"] == "SUCCESSFUL" else d["desired"])]
        if d["source"] else [],
        "targetServiceRevision": revision_summary(d, d["target"], d["desired"]),
        "alarms": {"alarmNames": d["alarms"], "status": "TRIGGERED" if d["triggered"] else "MONITORING",
                   "triggeredAlarmNames": d["triggered"]},
    }
    if d["triggered"]:
        view["rollback"] = {"reason": f"alarm {', '.join(d['triggered'])} is in ALARM", "startedAt": time.time()}
    # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeploymentCircuitBreaker.html
    # (its threshold: half the desired count, at least 3 and at most 200).
    if d["breaker"]:
        threshold = min(max(math.ceil(0.5 * d["desired"]), 3), 200)
        status = ("TRIGGERED" if d["breaker_triggered"] else
                  "MONITORING_COMPLETE" if d["status"] == "SUCCESSFUL" else "MONITORING")
        view["deploymentCircuitBreaker"] = {"status": status, "threshold": threshold,
                                            "failureCount": threshold if d["breaker_triggered"] else 0}
    else:
        view["deploymentCircuitBreaker"] = {"status": "DISABLED"}
    if d["breaker_triggered"]:
        # As AWS reports it (API_Rollback gives the circuit breaker as its example reason).
        view["statusReason"] = "Service deployment rolled back because the circuit breaker threshold was exceeded."
        view["rollback"] = {"reason": "The circuit breaker initiated the rollback operation.",
                            "startedAt": d["rollback_started"]}
    return view


# ECS tasks. States: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html
# Stop codes and reasons: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html
# RunTask and DescribeTasks failures: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/api_failures_messages.html
CAPACITY_UNAVAILABLE = "Capacity is unavailable at this time. Please try again later or in a different availability zone"
ECS_JSON = "application/x-amz-json-1.1"


def logs_call(action, payload):
    headers = {"Content-Type": ECS_JSON, "X-Amz-Target": "Logs_20140328." + action, "Authorization": unsigned("logs")}
    return upstream("POST", "/", json.dumps(payload).encode(), headers)


def resolve_secret(value_from):
    """A task definition's `valueFrom`: a secret's ARN, or `ARN:json-key:stage:version`."""
    parts = value_from.split(":")
    arn, key = ":".join(parts[:7]), (parts[7] if len(parts) > 7 else "")
    answer = secrets_call("GetSecretValue", {"SecretId": arn})
    if "SecretString" not in answer:
        raise LookupError(f"unable to retrieve secret from asm: {answer.get('__type', 'not found')}: {arn}")
    text = answer["SecretString"]
    if not key:
        return text
    try:
        return str(json.loads(text)[key])
    except (ValueError, TypeError, KeyError):
        raise LookupError("unable to retrieve secret from asm: service call has been retried 1 time(s): "
                          f"retrieved secret from Secrets Manager did not contain json key {key}") from None


def run_task(request):
    cluster = request.get("cluster", "default").rsplit("/", 1)[-1]
    definition = ecs_call("DescribeTaskDefinition", {"taskDefinition": request.get("taskDefinition")})
    definition = definition.get("taskDefinition")
    if not definition:
        return json_error(400, "InvalidParameterException", "TaskDefinition not found.")
    region = definition["taskDefinitionArn"].split(":")[3]
    cluster_arn = f"arn:aws:ecs:{region}:{ACCOUNT}:cluster/{cluster}"
    with lock:
        refuse = task_settings["refuse_placement"] > 0
        task_settings["refuse_placement"] -= 1 if refuse else 0
        fail_pull = not refuse and task_settings["fail_pull"] > 0
        task_settings["fail_pull"] -= 1 if fail_pull else 0
    if refuse:
        record("task_placement_refused", cluster=cluster)
        answer = {"tasks": [], "failures": [{"reason": CAPACITY_UNAVAILABLE}]}
        return 200, ECS_JSON, json.dumps(answer).encode()
    # "A total of 8192 characters are allowed for overrides. This limit
    # includes the JSON formatting characters of the override structure."
    overrides = request.get("overrides") or {}
    if len(json.dumps(overrides, separators=(",", ":"))) > 8192:
        record("task_overrides_refused")
        return json_error(400, "InvalidParameterException", "Container Overrides length must be at most 8192")
    task_id = os.urandom(16).hex()
    arn = f"arn:aws:ecs:{region}:{ACCOUNT}:task/{cluster}/{task_id}"
    container = with_overrides(definition["containerDefinitions"][0], overrides)
    task = dict(arn=arn, id=task_id, cluster_arn=cluster_arn, definition=definition["taskDefinitionArn"],
                container=container, started_by=request.get("startedBy"), describes=0, status="PROVISIONING",
                fail_pull=fail_pull, process=None, output=[], exit_code=None, stop_code=None,
                stopped_reason=None, container_reason=None, created=time.time())
    with lock:
        tasks[arn] = task
    record("task_started", task=arn, family=definition.get("family"))
    return 200, ECS_JSON, json.dumps({"tasks": [task_view(task)], "failures": []}).encode()


def with_overrides(container, overrides):
    """The container as RunTask's containerOverrides change it: a command
    replaces the definition's, environment variables are added or replace
    those of the same name."""
    container = dict(container)
    for override in overrides.get("containerOverrides") or []:
        if override.get("name") != container.get("name"):
            continue
        if override.get("command"):
            container["command"] = override["command"]
        if override.get("environment"):
            names = {e["name"] for e in override["environment"]}
            container["environment"] = [e for e in container.get("environment", []) if e["name"] not in names] \
                + override["environment"]
        record("task_overrides_applied", command=bool(override.get("command")),
               environment=sorted(e["name"] for e in override.get("environment") or []))
    return container


def task_view(task):
    container = {"name": task["container"]["name"], "image": task["container"]["image"],
                 "lastStatus": {"STOPPED": "STOPPED", "RUNNING": "RUNNING"}.get(task["status"], "PENDING")}
    if task["exit_code"] is not None:
        container["exitCode"] = task["exit_code"]
    if task["container_reason"]:
        container["reason"] = task["container_reason"]
    view = {"taskArn": task["arn"], "clusterArn": task["cluster_arn"], "taskDefinitionArn": task["definition"],
            "lastStatus": task["status"], "desiredStatus": "STOPPED" if task["status"] == "STOPPED" else "RUNNING",
            "launchType": "FARGATE", "startedBy": task["started_by"], "createdAt": task["created"],
            "containers": [container]}
    if task["status"] == "STOPPED":
        view.update(stopCode=task["stop_code"], stoppedReason=task["stopped_reason"], stoppedAt=time.time())
    return view


def describe_tasks(arns):
    """One describe further on in each task's life; a new task is not listed yet."""
    found, failures = [], []
    for arn in arns:
        task = tasks[arn]
        with lock:
            task["describes"] += 1
            describes = task["describes"]
        if describes == 1:
            record("task_not_listed_yet", task=arn)
            failures.append({"arn": arn, "reason": "MISSING"})
            continue
        if task["status"] == "PROVISIONING":
            task["status"] = "PENDING"
            record("task_pending", task=arn)
            if task["fail_pull"]:
                image = task["container"]["image"]
                stop(task, "TaskFailedToStart",
                     f"CannotPullContainerError: pull image manifest has been retried 7 time(s): failed to resolve ref {image}: not found",
                     container_reason=f"CannotPullContainerError: {image}: not found")
            else:
                start_container(task)
        elif task["status"] == "PENDING" and task["process"] is not None:
            task["status"] = "RUNNING"
            record("task_running", task=arn)
        elif task["status"] == "RUNNING" and task["process"].poll() is not None:
            finish(task)
        found.append(task_view(task))
    return 200, ECS_JSON, json.dumps({"tasks": found, "failures": failures}).encode()


def start_container(task):
    """The container's command, run here as ECS runs it: its environment and
    secrets, no terminal (psql's `\password` then reads standard input)."""
    container = task["container"]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
    env.update({e["name"]: e["value"] for e in container.get("environment", [])})
    try:
        env.update({s["name"]: resolve_secret(s["valueFrom"]) for s in container.get("secrets", [])})
    except LookupError as err:
        stop(task, "TaskFailedToStart", "ResourceInitializationError: unable to pull secrets or registry auth: "
                                        f"execution resource retrieval failed: {err}")
        return
    with lock:
        database = task_settings["database"]
    if database and "PGHOST" in env:
        env["PGHOST"], env["PGPORT"] = database.rsplit(":", 1)
        env["PGSSLMODE"] = "disable"
        env.pop("PGSSLROOTCERT", None)
    command = (container.get("entryPoint") or []) + (container.get("command") or [])
    task["process"] = subprocess.Popen(["setsid"] + command, env=env, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    threading.Thread(target=lambda: task["output"].extend(
        task["process"].stdout.read().decode(errors="replace").splitlines()), daemon=True).start()
    record("task_container_started", task=task["arn"])


def finish(task, code="EssentialContainerExited", reason="Essential container in task exited"):
    task["process"].wait()
    time.sleep(0.1)  # the output reader's last lines
    returned = task["process"].returncode
    # A container killed by a signal exits with 128 + the signal, as in Docker.
    task["exit_code"] = returned if returned >= 0 else 128 - returned
    write_logs(task)
    stop(task, code, reason)


def stop(task, code, reason, container_reason=None):
    task.update(status="STOPPED", stop_code=code, stopped_reason=reason, container_reason=container_reason)
    record("task_stopped", task=task["arn"], stop_code=code, exit_code=task["exit_code"])


def stop_task(arn, reason):
    """ECS sends SIGTERM to the container (its whole process group here),
    then SIGKILL after the stop timeout."""
    task = tasks[arn]
    if task["status"] != "STOPPED" and task["process"] is not None:
        if task["process"].poll() is None:
            try:
                os.killpg(task["process"].pid, signal.SIGTERM)
                task["process"].wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(task["process"].pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        finish(task, "UserInitiated", reason)
    elif task["status"] != "STOPPED":
        stop(task, "UserInitiated", reason)
    return 200, ECS_JSON, json.dumps({"task": task_view(task)}).encode()


def write_logs(task):
    """The awslogs driver's stream: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using_awslogs.html"""
    options = (task["container"].get("logConfiguration") or {}).get("options") or {}
    group, prefix = options.get("awslogs-group"), options.get("awslogs-stream-prefix")
    if not group or not prefix:
        return
    stream = f"{prefix}/{task['container']['name']}/{task['id']}"
    logs_call("CreateLogStream", {"logGroupName": group, "logStreamName": stream})
    now = int(time.time() * 1000)
    events = [{"timestamp": now, "message": line} for line in task["output"]] or []
    if events:
        logs_call("PutLogEvents", {"logGroupName": group, "logStreamName": stream, "logEvents": events})
    record("task_logs_written", task=task["arn"], stream=stream, lines=len(events))


# Target health: https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html
def services_using(target_group_arn):
    """The ECS services whose tasks register in the target group."""
    found = []
    for cluster in ecs_call("ListClusters", {}).get("clusterArns", []):
        arns = ecs_call("ListServices", {"cluster": cluster}).get("serviceArns", [])
        if not arns:
            continue
        for svc in ecs_call("DescribeServices", {"cluster": cluster, "services": arns}).get("services", []):
            if svc.get("status") != "ACTIVE":
                continue
            with lock:
                sent = service_configuration.get(svc.get("serviceName"), {}).get("loadBalancers") or []
            for balancer in svc.get("loadBalancers", []):
                advanced = next((b.get("advancedConfiguration") or {} for b in sent
                                 if b.get("targetGroupArn") == balancer.get("targetGroupArn")), {})
                groups = {balancer.get("targetGroupArn"), advanced.get("alternateTargetGroupArn")}
                if target_group_arn in groups:
                    rule = advanced.get("productionListenerRule")
                    # With a production rule, the tasks are where it sends traffic.
                    serving = not rule or rule_weights(rule).get(target_group_arn, 0) > 0 or (
                        target_group_arn == balancer.get("targetGroupArn") and not rule_weights(rule))
                    found.append((svc, balancer.get("containerPort", 3000), serving))
    return found


def target_health(target_group_arn):
    using = services_using(target_group_arn)
    if not using:
        return None  # moto's answer: what was registered by hand, if anything
    with lock:
        deploying = {d["service"] for d in deployments.values() if d["status"] == "IN_PROGRESS"}
        unhealthy = target_settings["unhealthy"]
    with lock:
        reads = health_reads.get(target_group_arn, 0)
        health_reads[target_group_arn] = reads + 1
    members = []
    for index, (svc, port, serving) in enumerate(using):
        if not serving:
            record("targets_played", target_group=target_group_arn, state="none", count=0)
            continue
        # A running task's target is checked by ELB before it is healthy:
        # `initial` while its service deploys, and on the first read after.
        if svc["serviceName"] in deploying or reads == 0:
            state, reason, text = "initial", "Elb.InitialHealthChecking", "Initial health checks in progress"
        elif unhealthy:
            state, reason, text = "unhealthy", "Target.ResponseCodeMismatch", "Health checks failed with these codes: [503]"
        else:
            state, reason, text = "healthy", None, None
        for n in range(svc.get("runningCount") or svc.get("desiredCount") or 0):
            health = f"<State>{state}</State>"
            if reason:
                health += f"<Reason>{reason}</Reason><Description>{text}</Description>"
            members.append(f"<member><Target><Id>10.0.{index}.{n + 10}</Id><Port>{port}</Port></Target>"
                           f"<HealthCheckPort>{port}</HealthCheckPort><TargetHealth>{health}</TargetHealth></member>")
        record("targets_played", target_group=target_group_arn, state=state, count=len(members))
    xml = ('<DescribeTargetHealthResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">'
           f"<DescribeTargetHealthResult><TargetHealthDescriptions>{''.join(members)}</TargetHealthDescriptions>"
           "</DescribeTargetHealthResult><ResponseMetadata><RequestId>proxy</RequestId></ResponseMetadata>"
           "</DescribeTargetHealthResponse>")
    return 200, "text/xml", xml.encode()


# Traffic shifting: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/canary-deployment.html
# and linear-deployment.html (the production listener rule's weights move between the two groups).
def traffic_of(request, config):
    strategy = config.get("strategy", "ROLLING")
    balancers = request.get("loadBalancers") or []
    advanced = (balancers[0].get("advancedConfiguration") if balancers else None) or {}
    if strategy not in ("CANARY", "LINEAR") or not advanced.get("productionListenerRule"):
        return None
    share = ((config.get("canaryConfiguration") or {}).get("canaryPercent") if strategy == "CANARY"
             else (config.get("linearConfiguration") or {}).get("stepPercent"))
    return dict(rule=advanced["productionListenerRule"], groups=[balancers[0]["targetGroupArn"],
                advanced["alternateTargetGroupArn"]], percent=float(share or 10.0))


def rule_weights(rule):
    """The rule's forward weights, target group ARN -> weight."""
    xml = elb_query("DescribeRules", **{"RuleArns.member.1": rule})
    weights = {}
    for groups in re.findall(r"<TargetGroups>(.*?)</TargetGroups>", xml, re.S):
        for arn, weight in re.findall(r"<TargetGroupArn>([^<]+)</TargetGroupArn>\s*<Weight>(\d+)</Weight>", groups):
            weights[arn] = int(weight)
    return weights


def set_weights(rule, weights):
    params = {"RuleArn": rule, "Actions.member.1.Type": "forward", "Actions.member.1.Order": "1"}
    for i, (arn, weight) in enumerate(weights, 1):
        params[f"Actions.member.1.ForwardConfig.TargetGroups.member.{i}.TargetGroupArn"] = arn
        params[f"Actions.member.1.ForwardConfig.TargetGroups.member.{i}.Weight"] = str(weight)
    elb_query("ModifyRule", **params)


def shift(d, stage):
    traffic = d["traffic"]
    if stage == "PRODUCTION_TRAFFIC_SHIFT":
        if not d["shifted"]:
            weights = rule_weights(traffic["rule"])
            serving = max(traffic["groups"], key=lambda g: weights.get(g, 0))
            d["shifted"] = (serving, next(g for g in traffic["groups"] if g != serving))
        serving, new = d["shifted"]
        # The canary's share, or one more linear step (kept exact: a step of
        # 12.5 % reaches 100 % in eight steps; only the weights are whole).
        d["share"] = min(d["share"] + traffic["percent"], 100.0)
        share = round(d["share"])
        moved = [(serving, 100 - share), (new, share)]
    else:
        serving, new = d["shifted"]
        moved = [(serving, 0), (new, 100)]
    set_weights(traffic["rule"], moved)
    record("traffic_shifted", service=d["service"], stage=stage, weights=dict(moved))


def canonical(value):
    return json.dumps(value, sort_keys=True)


def remember_configuration(name, request):
    with lock:
        sent = service_configuration.setdefault(name, {})
        for key in ("loadBalancers", "networkConfiguration"):
            if key in request:
                sent[key] = request[key]


def pending_maintenance(form):
    """DescribePendingMaintenanceActions (moto has none), for the instances
    its `db-instance-id` filter names (identifiers or ARNs): the actions set
    by POST /__proxy/maintenance, none by default, as RDS lists an instance
    with nothing pending.
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribePendingMaintenanceActions.html"""
    names = [v for k, v in form.items() if k.startswith("Filters.Filter.") and ".Values." in k]
    with lock:
        actions = list(maintenance_settings["actions"])
    record("maintenance_listed", instances=names, count=len(actions))
    fields = [("action", "Action"), ("description", "Description"),
              ("auto_applied_after", "AutoAppliedAfterDate"), ("forced_apply", "ForcedApplyDate"),
              ("current_apply", "CurrentApplyDate"), ("opt_in_status", "OptInStatus")]
    details = "".join(
        "<PendingMaintenanceAction>" + "".join(f"<{tag}>{a[key]}</{tag}>" for key, tag in fields if a.get(key))
        + "</PendingMaintenanceAction>" for a in actions)
    resources = "".join(
        f"<ResourcePendingMaintenanceActions><ResourceIdentifier>{name}</ResourceIdentifier>"
        f"<PendingMaintenanceActionDetails>{details}</PendingMaintenanceActionDetails>"
        "</ResourcePendingMaintenanceActions>" for name in names) if actions else ""
    xml = ('<DescribePendingMaintenanceActionsResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">'
           f"<DescribePendingMaintenanceActionsResult><PendingMaintenanceActions>{resources}</PendingMaintenanceActions>"
           "</DescribePendingMaintenanceActionsResult><ResponseMetadata><RequestId>proxy</RequestId></ResponseMetadata>"
           "</DescribePendingMaintenanceActionsResponse>")
    return 200, "text/xml", xml.encode()


def open_deployment(request, service, source, changed):
    """A service deployment from the `source` task definition (None for a
    new service) to the service's own, as ECS starts one."""
    config = request.get("deploymentConfiguration") or {}
    alarms = (config.get("alarms") or {})
    breaker = config.get("deploymentCircuitBreaker") or {}
    # A new service's first deployment has no earlier revision to roll back
    # to ("rolled back to the last deployment that completed successfully",
    # API_DeploymentCircuitBreaker) and no serving group to shift traffic
    # from: its alarms and a failed pull are not played there (what ECS then
    # reports is left to a real-AWS run).
    first = source is None
    watched = alarms.get("alarmNames", []) if alarms.get("rollback") and not first else []
    arn = f"{service.get('serviceArn')}/deployment/{len(deployments) + 1}".replace(":service/", ":service-deployment/")
    with lock:
        pull_fails = (not first and task_settings["fail_service_pull"] > 0
                      and breaker.get("enable") and breaker.get("rollback"))
        task_settings["fail_service_pull"] -= 1 if pull_fails else 0
        deployments[arn] = dict(pull_fails=bool(pull_fails), breaker_triggered=False,
            breaker=bool(breaker.get("enable")), desired=service.get("desiredCount") or 1,
            arn=arn, service=service.get("serviceName"), service_arn=service.get("serviceArn"),
            cluster=service.get("clusterArn"), cluster_arn=service.get("clusterArn"),
            source=source, target=service.get("taskDefinition"), strategy=config.get("strategy", "ROLLING"),
            traffic=None if first else traffic_of(request, config), shifted=None, share=0,
            alarms=watched, triggered=[], status="IN_PROGRESS", stage="PRE_SCALE_UP", stage_index=0,
            created=time.time())
        health_reads.clear()
    record("deployment_started", service=service.get("serviceName"), strategy=config.get("strategy", "ROLLING"),
           alarms=watched, changed=changed)


def query_error(status, code, message, ec2=False):
    if ec2:
        body = f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>proxy</RequestID></Response>"
    else:
        body = f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>proxy</RequestId></ErrorResponse>"
    return status, "text/xml", body.encode()


def engine_version_with_targets(version):
    """DescribeDBEngineVersions for one version: its ValidUpgradeTarget list,
    the majors RDS offers from it (UPGRADE_TARGETS)."""
    major = version.split(".")[0]
    targets = UPGRADE_TARGETS.get(major, [])
    record("upgrade_targets_listed", version=version, targets=",".join(targets))
    listed = "".join(
        "<UpgradeTarget><Engine>postgres</Engine>"
        f"<EngineVersion>{t}</EngineVersion><IsMajorVersionUpgrade>true</IsMajorVersionUpgrade>"
        "<AutoUpgrade>false</AutoUpgrade></UpgradeTarget>"
        for t in targets
    )
    xml = (
        '<DescribeDBEngineVersionsResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">'
        "<DescribeDBEngineVersionsResult><DBEngineVersions><DBEngineVersion>"
        f"<Engine>postgres</Engine><EngineVersion>{version}</EngineVersion>"
        f"<DBParameterGroupFamily>postgres{major}</DBParameterGroupFamily><Status>available</Status>"
        f"<ValidUpgradeTarget>{listed}</ValidUpgradeTarget>"
        "</DBEngineVersion></DBEngineVersions></DescribeDBEngineVersionsResult>"
        "<ResponseMetadata><RequestId>proxy</RequestId></ResponseMetadata></DescribeDBEngineVersionsResponse>"
    )
    return 200, "text/xml", xml.encode()


def engine_default_extensions(family):
    """DescribeEngineDefaultParameters, reduced to the one parameter that
    lists the family's extensions (rds.extensions); moto has no defaults."""
    record("extensions_listed", family=family)
    xml = (
        '<DescribeEngineDefaultParametersResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">'
        "<DescribeEngineDefaultParametersResult><EngineDefaults>"
        f"<DBParameterGroupFamily>{family}</DBParameterGroupFamily><Parameters><Parameter>"
        "<ParameterName>rds.extensions</ParameterName>"
        f"<ParameterValue>{','.join(FAMILY_EXTENSIONS)}</ParameterValue>"
        "<Source>system</Source><IsModifiable>false</IsModifiable>"
        "</Parameter></Parameters></EngineDefaults></DescribeEngineDefaultParametersResult>"
        "<ResponseMetadata><RequestId>proxy</RequestId></ResponseMetadata></DescribeEngineDefaultParametersResponse>"
    )
    return 200, "text/xml", xml.encode()


def major_upgrade_refusal(form):
    """What RDS refuses of a ModifyDBInstance that changes the major
    (USER_UpgradeDBInstance.PostgreSQL): no AllowMajorVersionUpgrade, a
    version it does not offer from the running one, and a parameter group
    of the old family. None when it accepts."""
    identifier = form.get("DBInstanceIdentifier", "")
    described = rds_query("DescribeDBInstances", DBInstanceIdentifier=identifier)
    running = (tags_in(described, "EngineVersion") or [""])[0]
    target = form["EngineVersion"]
    old_major, new_major = running.split(".")[0], target.split(".")[0]
    if old_major == new_major:
        return None
    if form.get("AllowMajorVersionUpgrade") != "true":
        record("major_upgrade_refused", reason="AllowMajorVersionUpgrade")
        return query_error(400, "InvalidParameterCombination",
                           "The AllowMajorVersionUpgrade flag must be present when upgrading to a new major version.")
    offered = UPGRADE_TARGETS.get(old_major, [])
    if not any(t == target or t.split(".")[0] == target for t in offered):
        record("major_upgrade_refused", reason="target", version=target)
        return query_error(400, "InvalidParameterCombination", f"Cannot upgrade postgres from {running} to {target}")
    group = form.get("DBParameterGroupName") or (tags_in(described, "DBParameterGroupName") or [""])[0]
    groups = rds_query("DescribeDBParameterGroups", DBParameterGroupName=group)
    family = (tags_in(groups, "DBParameterGroupFamily") or [""])[0]
    if family != f"postgres{new_major}":
        record("major_upgrade_refused", reason="parameter group", group=group)
        if not form.get("DBParameterGroupName"):
            return query_error(400, "InvalidParameterCombination",
                               "The current DB instance parameter group is custom. You must explicitly specify a new DB instance parameter group, either default or custom, for the engine version upgrade.")
        return query_error(400, "InvalidParameterCombination",
                           f"The parameter group {group} with DBParameterGroupFamily {family} can't be used for this instance. Use a parameter group with DBParameterGroupFamily postgres{new_major}.")
    record("major_upgrade", identifier=identifier, version=target, group=group)
    return None


def json_error(status, code, message):
    return status, "application/x-amz-json-1.1", json.dumps({"__type": code, "message": message}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status, content_type, body, extra_headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra_headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        if self.path == "/__proxy/events":
            with lock:
                body = json.dumps(events).encode()
            return self.reply(200, "application/json", body)
        if self.path == "/__proxy/authorizations":
            with lock:
                body = json.dumps(authorizations).encode()
            return self.reply(200, "application/json", body)
        if self.path == "/__proxy/ready":
            return self.reply(200, "text/plain", b"ready")
        self.forward()

    def do_HEAD(self):
        self.forward()

    def do_PUT(self):
        self.forward()

    def do_DELETE(self):
        self.forward()

    def do_POST(self):
        if self.path == "/__proxy/targets":
            with lock:
                target_settings.update(json.loads(self.read_body()))
            return self.reply(200, "application/json", b"{}")
        if self.path == "/__proxy/maintenance":
            with lock:
                maintenance_settings.update(json.loads(self.read_body()))
            return self.reply(200, "application/json", b"{}")
        if self.path == "/__proxy/tasks":
            with lock:
                task_settings.update(json.loads(self.read_body()))
            return self.reply(200, "application/json", b"{}")
        if self.path == "/__proxy/raise-during-shift":
            alarm = json.loads(self.read_body())["alarm"]
            with lock:
                raise_during_shift.add(alarm)
            return self.reply(200, "application/json", b"{}")
        self.forward()

    def forward(self):
        body = self.read_body() if self.command in ("POST", "PUT") else b""
        service = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", self.headers.get("Authorization", ""))
        service = service.group(1) if service else ""
        target = self.headers.get("X-Amz-Target", "")
        form = {}
        if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
        action = form.get("Action") or target.rsplit(".", 1)[-1]
        self.authorize(service, action, form, body)

        self.ecs_body = body
        self.ecs_source = None
        self.ecs_sent_before = {}
        played = self.play_before(service, action, form, body)
        if played:
            return self.reply(*played)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding", "content-length")}
        headers["Content-Length"] = str(len(body))
        status, response_headers, data = upstream(self.command, self.path, body, headers)
        try:
            data = self.play_after(service, action, form, status, data)
        except Played as played:
            return self.reply(*played.answer)
        passed = [(k, v) for k, v in response_headers
                  if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-type", "server", "date")]
        content_type = dict((k.lower(), v) for k, v in response_headers).get("content-type", "text/xml")
        self.reply(status, content_type, data, passed)

    def authorize(self, service, action, form, body):
        split = urllib.parse.urlsplit(self.path)
        query = {k: v[0] if v else "" for k, v in urllib.parse.parse_qs(split.query, keep_blank_values=True).items()}
        region = re.search(r"Credential=[^/]+/[^/]+/([^/]+)/", self.headers.get("Authorization", ""))
        region = region.group(1) if region else "us-east-1"
        body_json = None
        if self.headers.get("Content-Type", "").startswith("application/x-amz-json"):
            try:
                body_json = json.loads(body or b"{}")
            except ValueError:
                body_json = None
        operation = "" if service in ("s3", "route53") else action
        try:
            found = aws_authorization.authorizations(
                service, operation, self.command, split.path, query, form, body_json, region,
                ACCOUNT, raw_body=body)
        except Exception as err:  # the test fails on it, naming the call
            found = [dict(call=f"{service} {operation or self.command + ' ' + split.path}", action="?",
                          resource="?", context={}, unknown=True, error=repr(err))]
        # Which credentials signed it: the onboarding test holds that, once
        # the role is assumed, no call is made with the operator's own.
        key = re.search(r"Credential=([^/]+)/", self.headers.get("Authorization", ""))
        for entry in found:
            entry["key"] = key.group(1) if key else ""
        with lock:
            authorizations.extend(found)

    # Teardown: what a delete frees, AWS releases slowly.
    def play_teardown_before(self, service, action, form, body):
        self.captured = None
        ident = form.get("DBInstanceIdentifier")
        refusal = HELD_REFUSALS.get((service, action))
        if refusal:
            kind, key, event, code, message, ec2 = refusal
            by = holder(kind, form.get(key))
            if by:
                record(event, resource=form.get(key), by=by)
                return query_error(400, code, message.format(id=form.get(key), by=by), ec2=ec2)
        with lock:
            deleting = deleting_instances.get(ident)
            if deleting and deleting[0] <= time.time():
                del deleting_instances[ident]
                deleting = None
        if service == "rds" and deleting:
            if action == "DeleteDBInstance":
                return query_error(400, "InvalidDBInstanceState", f"Instance {ident} is already being deleted.")
            if action == "CreateDBInstance":
                return query_error(400, "DBInstanceAlreadyExists", "DB instance already exists")
            if action == "DescribeDBInstances":
                record("instance_deleting", identifier=ident)
                return 200, "text/xml", deleting[1].encode()
        if service == "rds" and action == "DescribeDBInstances" and ident:
            looked("RDS instance deleted", ident)
        if service == "rds" and action == "DeleteDBInstance":
            self.captured = rds_query("DescribeDBInstances", DBInstanceIdentifier=ident)
        if service == "elasticloadbalancing" and action == "DeleteLoadBalancer":
            self.captured = elb_query("DescribeLoadBalancers", **{"LoadBalancerArns.member.1": form.get("LoadBalancerArn", "")})
        if service == "ec2" and action == "DeleteNatGateway":
            self.captured = ec2_query("DescribeNatGateways", **{"NatGatewayId.1": form.get("NatGatewayId", "")})
        if service == "ec2" and action == "DeleteVpcEndpoints":
            ids = {k: v for k, v in form.items() if k.startswith("VpcEndpointId.")}
            self.captured = ec2_query("DescribeVpcEndpoints", **ids)
        if service == "ecs" and action == "CreateService":
            name = json.loads(body or b"{}").get("serviceName")
            with lock:
                draining = draining_services.get(name, 0) > 0
            if draining:
                return json_error(400, "InvalidParameterException", "Unable to Start a service that is still Draining.")
        if service == "acm" and action == "RequestCertificate":
            token = json.loads(body or b"{}").get("IdempotencyToken")
            with lock:
                made = certificate_tokens.get(token)
            if token and made and time.time() - made[1] < 3600:
                record("certificate_token_reused", arn=made[0])
                return 200, "application/x-amz-json-1.1", json.dumps({"CertificateArn": made[0]}).encode()
        return None

    def play_teardown_after(self, service, action, form, status, text):
        ok = status < 300
        if service == "rds" and action == "DeleteDBInstance" and ok and self.captured:
            ident = form.get("DBInstanceIdentifier")
            answer = self.captured.replace("<DBInstanceStatus>available</DBInstanceStatus>",
                                           "<DBInstanceStatus>deleting</DBInstanceStatus>")
            with lock:
                deleting_instances[ident] = (time.time() + INSTANCE_DELETING_S, answer)
            settles("RDS instance deleted", ident, time.time() + INSTANCE_DELETING_S)
            for kind, element in (("db-subnet-group", "DBSubnetGroupName"), ("db-parameter-group", "DBParameterGroupName"),
                                  ("subnet", "SubnetIdentifier"), ("security-group", "VpcSecurityGroupId")):
                hold(kind, tags_in(self.captured, element), ident, INSTANCE_DELETING_S)
            record("instance_delete_started", identifier=ident)
        if service == "elasticloadbalancing" and action == "DeleteLoadBalancer" and ok and self.captured:
            name = (tags_in(self.captured, "LoadBalancerName") or ["?"])[0]
            hold("subnet", tags_in(self.captured, "SubnetId"), name, INTERFACES_LINGER_S)
            hold("security-group", re.findall(r"<member>(sg-[^<]+)</member>", self.captured), name, INTERFACES_LINGER_S)
        if service == "ec2" and action == "DeleteNatGateway" and ok and self.captured:
            nat = form.get("NatGatewayId")
            with lock:
                nat_deleting[nat] = time.time() + NAT_DELETING_S
            settles("NAT gateway deleted", nat, time.time() + NAT_DELETING_S)
            hold("subnet", tags_in(self.captured, "subnetId"), nat, NAT_DELETING_S)
            hold("allocation", tags_in(self.captured, "allocationId"), nat, NAT_DELETING_S)
        if service == "ec2" and action == "DeleteVpcEndpoints" and ok and self.captured:
            for endpoint in re.findall(r"<item>\s*<vpcEndpointId>.*?</item>\s*(?=<item>\s*<vpcEndpointId>|</vpcEndpointSet>)",
                                       self.captured, flags=re.S):
                if "<vpcEndpointType>Interface</vpcEndpointType>" not in endpoint:
                    continue
                ident = tags_in(endpoint, "vpcEndpointId")[0]
                hold("subnet", re.findall(r"<item>(subnet-[^<]+)</item>", endpoint), ident, INTERFACES_LINGER_S)
                hold("security-group", tags_in(endpoint, "groupId"), ident, INTERFACES_LINGER_S)
        if service == "ec2" and action == "DescribeNatGateways" and ok:
            now = time.time()
            with lock:
                going = [n for n, until in nat_deleting.items() if until > now]
            for nat in going:
                text = re.sub(f"(<natGatewayId>{nat}</natGatewayId>.*?<state>)deleted(</state>)", r"\1deleting\2",
                              text, flags=re.S)
                record("nat_deleting", nat=nat)
            for nat in set(re.findall(r"<natGatewayId>([^<]+)</natGatewayId>", text)):
                if nat not in going:
                    looked("NAT gateway deleted", nat)
        if service == "ecs" and action == "DeleteService" and ok:
            name = json.loads(self.ecs_body or b"{}").get("service", "").rsplit("/", 1)[-1]
            with lock:
                draining_services[name] = 2
        if service == "ecs" and action == "DescribeServices" and ok:
            answer = json.loads(text)
            for svc in answer.get("services", []):
                with lock:
                    left = draining_services.get(svc.get("serviceName"), 0)
                    drains = left > 0 and svc.get("status") == "INACTIVE"
                    if drains:
                        draining_services[svc.get("serviceName")] = left - 1
                if drains:
                    svc["status"] = "DRAINING"
                    record("service_draining", service=svc.get("serviceName"))
            text = json.dumps(answer)
        if service == "secretsmanager" and action == "CreateSecret" and status == 400 and "ResourceExistsException" in text:
            name = json.loads(self.ecs_body or b"{}").get("Name")
            if secrets_call("DescribeSecret", {"SecretId": name}).get("DeletedDate"):
                record("secret_scheduled_for_deletion", name=name)
                raise Played(json_error(400, "InvalidRequestException",
                                        "You can't create this secret because a secret with this name is already scheduled for deletion."))
        if service == "acm" and action == "RequestCertificate" and ok:
            token = json.loads(self.ecs_body or b"{}").get("IdempotencyToken")
            arn = json.loads(text).get("CertificateArn")
            if token and arn:
                with lock:
                    certificate_tokens.setdefault(token, (arn, time.time()))
        return text

    # What AWS refuses or answers differently, before moto sees the call.
    def play_before(self, service, action, form, body):
        global ecs_role_seen_at
        played = self.play_teardown_before(service, action, form, body)
        if played:
            return played
        if service == "rds" and action == "ModifyDBParameterGroup":
            names = [v for k, v in form.items() if k.endswith("ParameterName")]
            refused = [n for n in names if n in NOT_MODIFIABLE]
            if refused:
                record("parameter_refused", parameter=refused[0])
                return query_error(400, "InvalidParameterValue", f"The parameter {refused[0]} cannot be modified.")
        if service == "rds" and action == "DescribeEngineDefaultParameters":
            return engine_default_extensions(form.get("DBParameterGroupFamily", ""))
        if service == "rds" and action == "DescribeDBEngineVersions" and form.get("EngineVersion"):
            return engine_version_with_targets(form["EngineVersion"])
        if service == "rds" and action == "ModifyDBInstance" and form.get("EngineVersion"):
            refused = major_upgrade_refusal(form)
            if refused:
                return refused
        if service == "rds" and action == "DescribeDBEngineVersions":
            family = form.get("DBParameterGroupFamily", "postgres16")
            major = family.removeprefix("postgres")
            version = DEFAULT_MINOR.get(major, major)
            record("engine_versions_listed", family=family, default=version)
            xml = (
                '<DescribeDBEngineVersionsResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">'
                "<DescribeDBEngineVersionsResult><DBEngineVersions><DBEngineVersion>"
                f"<Engine>postgres</Engine><EngineVersion>{version}</EngineVersion>"
                f"<DBParameterGroupFamily>{family}</DBParameterGroupFamily><Status>available</Status>"
                "</DBEngineVersion></DBEngineVersions></DescribeDBEngineVersionsResult>"
                "<ResponseMetadata><RequestId>proxy</RequestId></ResponseMetadata></DescribeDBEngineVersionsResponse>"
            )
            return 200, "text/xml", xml.encode()
        if service == "rds" and action == "DescribePendingMaintenanceActions":
            return pending_maintenance(form)
        if service == "rds" and action == "CreateDBInstance":
            version = form.get("EngineVersion", "")
            if version in RETIRED_MINORS:
                record("engine_version_refused", version=version)
                return query_error(400, "InvalidParameterCombination", f"Cannot find version {version} for postgres")
        if service == "rds" and action == "DescribeDBParameters" and form.get("Source") == "user":
            group = form.get("DBParameterGroupName")
            with lock:
                stale = group in stale_parameter_groups
                stale_parameter_groups.discard(group)
            if stale:
                record("parameters_not_visible_yet", group=group)
                xml = (
                    '<DescribeDBParametersResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">'
                    "<DescribeDBParametersResult><Parameters/></DescribeDBParametersResult>"
                    "<ResponseMetadata><RequestId>proxy</RequestId></ResponseMetadata></DescribeDBParametersResponse>"
                )
                return 200, "text/xml", xml.encode()
        if service == "ec2" and action == "DeleteSubnet":
            users = subnet_users(form.get("SubnetId", ""))
            if users:
                record("subnet_in_use", subnet=form.get("SubnetId"), users=users)
                return query_error(400, "DependencyViolation",
                                   f"The subnet '{form.get('SubnetId')}' has dependencies and cannot be deleted.", ec2=True)
        if service == "ec2" and action == "CreateNatGateway":
            attached, vpc = igw_attached(form.get("SubnetId", ""))
            if not attached:
                record("nat_refused_without_igw", vpc=vpc)
                return query_error(400, "Gateway.NotAttached", f"Network {vpc} has no Internet gateway attached", ec2=True)
        if service == "elasticloadbalancing" and action == "CreateLoadBalancer":
            if form.get("Scheme", "internet-facing") == "internet-facing":
                attached, vpc = igw_attached(form.get("Subnets.member.1", ""))
                if not attached:
                    record("load_balancer_refused_without_igw", vpc=vpc)
                    return query_error(400, "InvalidSubnet", f"VPC {vpc} has no internet gateway")
        if service == "ecs" and action == "RunTask":
            return run_task(json.loads(body or b"{}"))
        if service == "ecs" and action in ("DescribeTasks", "StopTask"):
            request = json.loads(body or b"{}")
            arns = request.get("tasks") or [request.get("task")]
            if arns and all(a in tasks for a in arns):
                if action == "StopTask":
                    return stop_task(arns[0], request.get("reason", ""))
                return describe_tasks(arns)
        if service == "elasticloadbalancing" and action == "DescribeTargetHealth":
            played = target_health(form.get("TargetGroupArn", ""))
            if played:
                return played
        if service == "ecs" and action == "ListServiceDeployments":
            request = json.loads(body or b"{}")
            wanted = set(request.get("status") or [])
            after = (request.get("createdAt") or {}).get("after")
            with lock:
                found = [dict(d) for d in deployments.values()
                         if d["service"] == request.get("service").rsplit("/", 1)[-1]
                         and (not wanted or d["status"] in wanted)
                         and (after is None or d["created"] >= after)]
            listed = [{"serviceDeploymentArn": d["arn"], "serviceArn": d["service_arn"], "clusterArn": d["cluster_arn"],
                       "createdAt": d["created"], "status": d["status"]} for d in found]
            return 200, "application/x-amz-json-1.1", json.dumps({"serviceDeployments": listed}).encode()
        if service == "ecs" and action == "DescribeServiceDeployments":
            arns = json.loads(body or b"{}").get("serviceDeploymentArns", [])
            known = [a for a in arns if a in deployments]
            described = [deployment_view(advance(a)) for a in known]
            failures = [{"arn": a, "reason": "MISSING"} for a in arns if a not in deployments]
            return 200, "application/x-amz-json-1.1", json.dumps({"serviceDeployments": described, "failures": failures}).encode()
        if service == "ecs" and action == "UpdateService":
            request = json.loads(body or b"{}")
            current = ecs_call("DescribeServices", {"cluster": request.get("cluster"), "services": [request.get("service")]})
            services = current.get("services") or [{}]
            self.ecs_source = services[0].get("taskDefinition")
            with lock:
                self.ecs_sent_before = dict(service_configuration.get(request.get("service", "").rsplit("/", 1)[-1], {}))
        if service == "ecs" and action in ("CreateCluster", "CreateService"):
            with lock:
                seen = ecs_role_seen_at
            if seen is None or time.time() - seen < ROLE_SETTLES_AFTER_S:
                record("ecs_role_not_assumable", action=action)
                return json_error(
                    400,
                    "InvalidParameterException",
                    "Unable to assume the service linked role. Please verify that the ECS service linked role exists.",
                )
        return None

    def start_deployment(self, request, answer):
        """What starts a service deployment on ECS (UpdateService: "a new
        deployment is triggered" by a new task definition, load balancer or
        network configuration, or forceNewDeployment)."""
        service = answer.get("service") or {}
        target = service.get("taskDefinition")
        before = self.ecs_sent_before
        remember_configuration(service.get("serviceName"), request)
        changed = [key for key in ("loadBalancers", "networkConfiguration")
                   if key in request and key in before and canonical(request[key]) != canonical(before[key])]
        if target != self.ecs_source:
            changed.append("taskDefinition")
        if request.get("forceNewDeployment"):
            changed.append("forceNewDeployment")
        if not self.ecs_source or not changed:
            return
        open_deployment(request, service, self.ecs_source, changed)

    # What AWS reports differently, after moto answered.
    def play_after(self, service, action, form, status, data):
        global ecs_role_seen_at
        data = self.play_teardown_after(service, action, form, status, data.decode(errors="replace")).encode()
        if status >= 300:
            if service == "iam" and action == "CreateServiceLinkedRole" and form.get("AWSServiceName") == "ecs.amazonaws.com":
                with lock:
                    ecs_role_seen_at = ecs_role_seen_at or time.time()
            return data
        text = data.decode(errors="replace")
        if service == "ecs" and action == "UpdateService":
            self.start_deployment(json.loads(self.ecs_body or b"{}"), json.loads(text))
        if service == "ecs" and action == "CreateService":
            request = json.loads(self.ecs_body or b"{}")
            remember_configuration(request.get("serviceName"), request)
            # "Amazon ECS automatically creates a new service revision when
            # you create a service" (service-revision.html), deployed by a
            # service deployment like an update's.
            open_deployment(request, json.loads(text).get("service") or {}, None, ["created"])
        if service == "ecs" and action == "DescribeServices":
            answer = json.loads(text)
            with lock:
                going = {d["service"] for d in deployments.values() if d["status"] == "IN_PROGRESS"}
            for svc in answer.get("services", []):
                # moto leaves a new service at runningCount 0 (it runs no
                # task); its tasks run here, as they would on ECS.
                if svc.get("status") == "ACTIVE" and svc.get("runningCount", 0) < svc.get("desiredCount", 0):
                    svc["runningCount"] = svc["desiredCount"]
                    for deployment in svc.get("deployments", []):
                        deployment["runningCount"] = deployment.get("desiredCount", svc["desiredCount"])
                if svc.get("serviceName") in going:
                    for deployment in svc.get("deployments", []):
                        if deployment.get("status") == "PRIMARY":
                            deployment["rolloutState"] = "IN_PROGRESS"
            text = json.dumps(answer)
        if service == "iam" and action == "CreateServiceLinkedRole" and form.get("AWSServiceName") == "ecs.amazonaws.com":
            with lock:
                ecs_role_seen_at = time.time()
        if service == "rds" and action in ("CreateDBParameterGroup", "ModifyDBParameterGroup"):
            with lock:
                stale_parameter_groups.add(form.get("DBParameterGroupName"))
        if service == "rds" and action == "CreateDBInstance":
            identifier = form.get("DBInstanceIdentifier")
            with lock:
                # A new instance boots with its group's values: in sync.
                pending_reboot_groups.discard(form.get("DBParameterGroupName"))
                instance_script[identifier] = ["creating"]
                instance_created_at[identifier] = time.time()
            settles("RDS instance available", identifier, time.time() + INSTANCE_CREATING_S)
            record("instance_creating", identifier=identifier)
            text = text.replace("<DBInstanceStatus>available</DBInstanceStatus>", "<DBInstanceStatus>creating</DBInstanceStatus>")
        if service == "rds" and action == "ModifyDBParameterGroup":
            # A static parameter (ApplyMethod pending-reboot) takes effect at
            # the instance's next reboot; until then DescribeDBInstances reads
            # its group `pending-reboot` (USER_WorkingWithParamGroups).
            if "pending-reboot" in [v for k, v in form.items() if k.endswith(".ApplyMethod")]:
                with lock:
                    pending_reboot_groups.add(form.get("DBParameterGroupName"))
                record("parameters_pending_reboot", group=form.get("DBParameterGroupName"))
        if service == "rds" and action == "RebootDBInstance":
            with lock:
                pending_reboot_groups.clear()
            record("instance_rebooted", identifier=form.get("DBInstanceIdentifier"))
        if service == "rds" and action in ("ModifyDBInstance", "RebootDBInstance"):
            identifier = form.get("DBInstanceIdentifier")
            state = "modifying" if action == "ModifyDBInstance" else "rebooting"
            script = ["available", state]
            if action == "ModifyDBInstance" and form.get("EngineVersion"):
                # An engine upgrade reads `upgrading` for a while (pg_upgrade runs).
                script = ["available", "upgrading", "upgrading"]
                state = "upgrading"
            with lock:
                instance_script[identifier] = script
            record("instance_changing", identifier=identifier, state=state)
        if service == "rds" and action == "DescribeDBInstances":
            identifier = form.get("DBInstanceIdentifier")
            with lock:
                script = instance_script.get(identifier) or []
                status_now = script.pop(0) if script else None
                if time.time() - instance_created_at.get(identifier, 0) < INSTANCE_CREATING_S:
                    status_now = "creating"
            with lock:
                minor = maintenance_settings["running_minor"]
                waiting = list(pending_reboot_groups)
            for group in waiting:
                name = re.escape(group)
                text = re.sub(rf"(<DBParameterGroupName>{name}</DBParameterGroupName>\s*<ParameterApplyStatus>)in-sync",
                              r"\1pending-reboot", text)
                text = re.sub(rf"<ParameterApplyStatus>in-sync(</ParameterApplyStatus>\s*<DBParameterGroupName>{name}<)",
                              r"<ParameterApplyStatus>pending-reboot\1", text)
            if minor:
                # RDS applied a minor upgrade by itself (auto minor version upgrade).
                text = re.sub(r"<EngineVersion>[^<]*</EngineVersion>", f"<EngineVersion>{minor}</EngineVersion>", text)
            if status_now:
                text = text.replace("<DBInstanceStatus>available</DBInstanceStatus>", f"<DBInstanceStatus>{status_now}</DBInstanceStatus>")
            elif "<DBInstanceStatus>available</DBInstanceStatus>" in text:
                looked("RDS instance available", identifier)
        if service == "ec2" and action == "CreateNatGateway":
            nat = re.search(r"<natGatewayId>([^<]+)</natGatewayId>", text)
            if nat:
                with lock:
                    nat_pending[nat.group(1)] = [time.time() + NAT_PENDING_S, False]
                settles("NAT gateway available", nat.group(1), time.time() + NAT_PENDING_S)
                text = text.replace("<state>available</state>", "<state>pending</state>")
        if service == "ec2" and action == "DescribeNatGateways":
            ids = [v for k, v in form.items() if k.startswith("NatGatewayId.")]
            now = time.time()
            with lock:
                # Pending for its first second, and at least its first describe.
                pending = [i for i in ids if i in nat_pending and (nat_pending[i][0] > now or not nat_pending[i][1])]
                for i in ids:
                    if i in pending:
                        nat_pending[i][1] = True
                    else:
                        nat_pending.pop(i, None)
            if pending:
                record("nat_pending", nat=pending[0])
                text = text.replace("<state>available</state>", "<state>pending</state>")
            else:
                for i in ids:
                    looked("NAT gateway available", i)
        return text.encode()


def main():
    port = int(sys.argv[1])
    server = Server(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
