//! Desired + live → the changes that make live look like desired.

use crate::model::ResourceId;
use crate::resources::rds::upgrade;
use crate::resources::spec::{Desired, Live, Spec};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
        }
    }
}

/// A change of the file that AWS cannot make, and why (naming the key).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Refused {
    pub resource: String,
    pub property: String,
    pub why: String,
}

/// One property that differs. For sets and maps, one entry per element.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PropertyChange {
    pub property: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub forces_replacement: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Change {
    pub id: ResourceId,
    pub action: Action,
    pub properties: Vec<PropertyChange>,
    #[serde(skip)]
    pub desired: Option<Spec>,
    #[serde(skip)]
    pub live: Option<Live>,
    /// What must be done first (references and explicit ordering).
    #[serde(skip)]
    pub dependencies: Vec<ResourceId>,
    /// A replace forced by the replacement of something this refers to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_because: Option<ResourceId>,
    /// A replace whose new resource is made before the old one is deleted
    /// (`Kind::created_before_destroyed`); the old one goes last.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub create_before_destroy: bool,
}

impl Change {
    /// A delete or replace of something that holds data (`Kind::holds_data`).
    pub fn destroys_data(&self) -> bool {
        matches!(self.action, Action::Delete | Action::Replace)
            && self.id.kind().is_some_and(|k| k.holds_data())
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    /// Differences the schema step would correct in the database.
    pub database: usize,
}

impl Summary {
    fn of(changes: &[Change]) -> Summary {
        let mut summary = Summary::default();
        for change in changes {
            *match change.action {
                Action::Create => &mut summary.create,
                Action::Update => &mut summary.update,
                Action::Replace => &mut summary.replace,
                Action::Delete => &mut summary.delete,
            } += 1;
        }
        summary
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Plan {
    pub environment: String,
    pub changes: Vec<Change>,
    pub warnings: Vec<String>,
    pub summary: Summary,
    /// A digest of everything discovery saw: a saved plan applies only to
    /// the environment as it was when the plan was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Logical ids that more than one live resource claims (by tag). Deploy
    /// refuses to run until a person decides which one stays.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub duplicates: Vec<Duplicate>,
    /// What the environment needs from the customer's network
    /// (`[network] vpc_id`) and does not get. Deploy refuses until its owner
    /// fixes it: poolside changes nothing of theirs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub customer_network: Vec<crate::resources::network::customer::Problem>,
    /// Changes the file asks for that AWS cannot make (an older engine
    /// version, a major RDS does not offer): plan fails and deploy refuses,
    /// naming the key, while the commands that only read go on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<Refused>,
    /// The database side: what the schema step would change (commands that
    /// never run it, destroy and status's AWS half, leave it out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabasePlan>,
}

/// What deploy's schema step would change in the database: migrations to
/// apply, pg_cron jobs to correct, privileges and roles to restore (and
/// what it refuses: unknown or edited migrations).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct DatabasePlan {
    /// Whether the database was read (or, before the first deploy, there is
    /// none yet and everything is to be applied).
    pub checked: bool,
    /// Why it was not read, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_not: Option<String>,
    /// It should have been read and could not be: plan fails.
    #[serde(skip)]
    pub unreadable: bool,
    pub changes: Vec<Finding>,
    /// What the plan must say about these changes (a snapshot before a
    /// contracting migration); `with_database` adds them to the plan's.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// One difference between what should be and what is.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    pub resource: String,
    pub attribute: String,
    pub expected: Value,
    pub actual: Value,
    /// What to do about it, for a finding `deploy` does not repair by
    /// itself (a job's failed run, parameters waiting for a reboot).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

/// Two or more live resources tagged with one logical id: poolside never
/// guesses which is the real one, and never deletes one on a guess.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Duplicate {
    pub id: ResourceId,
    /// Every copy's AWS id; the first is the one discovery met first.
    pub physical_ids: Vec<String>,
}

impl Plan {
    /// The changes that delete or replace something holding data, which
    /// deploy applies only with `--allow-replace <id>`.
    pub fn data_losses(&self) -> Vec<&ResourceId> {
        self.changes
            .iter()
            .filter(|c| c.destroys_data())
            .map(|c| &c.id)
            .collect()
    }

    /// The database's major upgrade this plan makes, as (from, to)
    /// versions: deploy makes it only with `--allow-major-upgrade`.
    pub fn major_upgrade(&self) -> Option<(String, String)> {
        self.changes
            .iter()
            .filter(|c| c.action == Action::Update)
            .find_map(|c| match (&c.desired, c.live.as_ref().map(|l| &l.spec)) {
                (Some(Spec::DbInstance(new)), Some(Spec::DbInstance(old)))
                    if upgrade::is_major_upgrade(&old.engine_version, &new.engine_version) =>
                {
                    Some((old.engine_version.clone(), new.engine_version.clone()))
                }
                _ => None,
            })
    }
}

impl Plan {
    /// Splits the plan at a gate: the second part holds `gate` and every
    /// change that depends on it, directly or not, and every delete (deletes
    /// run last anyway); the first part holds the rest. Deploy runs the schema
    /// step between the two, so the API service never starts before the
    /// roles and tables it logs in with exist.
    pub fn split_at(&self, gate: &ResourceId) -> (Plan, Plan) {
        let mut after: BTreeSet<&ResourceId> = BTreeSet::from([gate]);
        loop {
            let grown: BTreeSet<&ResourceId> = self
                .changes
                .iter()
                .filter(|c| c.dependencies.iter().any(|d| after.contains(d)))
                .map(|c| &c.id)
                .chain(after.iter().copied())
                .collect();
            if grown.len() == after.len() {
                break;
            }
            after = grown;
        }
        let (second, first): (Vec<Change>, Vec<Change>) = self
            .changes
            .iter()
            .cloned()
            .partition(|c| c.action == Action::Delete || after.contains(&c.id));
        let part = |changes: Vec<Change>| Plan {
            environment: self.environment.clone(),
            summary: Summary::of(&changes),
            changes,
            warnings: Vec::new(),
            fingerprint: None,
            duplicates: Vec::new(),
            customer_network: Vec::new(),
            refused: Vec::new(),
            database: None,
        };
        (part(first), part(second))
    }

    /// No AWS change (the database side aside: see [`Plan::changes_anything`]).
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Whether deploy would change anything, in AWS or in the database.
    pub fn changes_anything(&self) -> bool {
        !self.is_empty()
            || self
                .database
                .as_ref()
                .is_some_and(|d| !d.changes.is_empty())
    }

    /// Adds the database side, and counts it in the summary.
    /// The fingerprint then covers it too: a saved plan applies only to
    /// the database as it was when the plan was made.
    pub fn with_database(mut self, database: DatabasePlan) -> Plan {
        use sha2::Digest as _;
        self.summary.database = database.changes.len();
        if let Some(fingerprint) = &self.fingerprint {
            let mut hash = sha2::Sha256::new();
            hash.update(fingerprint);
            hash.update(serde_json::to_vec(&database).expect("a database plan serializes"));
            self.fingerprint = Some(hash.finalize().iter().map(|b| format!("{b:02x}")).collect());
        }
        self.warnings.extend(database.warnings.iter().cloned());
        self.database = Some(database);
        self
    }
}

pub fn plan(environment: &str, desired: &[Desired], live: &[Live], warnings: Vec<String>) -> Plan {
    let (live, superseded) = settle_replacements(desired, live);
    let live = live.as_slice();
    let live_by_id: BTreeMap<&ResourceId, &Live> = live.iter().map(|l| (&l.id, l)).collect();
    // A `${...}` reference is filled in with what exists, unless the plan
    // gives that resource a new id (create, replace, a new task definition
    // revision): then it stays a reference, so what refers to it changes too.
    // That can cascade, so repeat until the set of new ids stops growing.
    // A replacement cascades (`cascade`), which can make more new ids, so
    // both grow together until neither does.
    let mut new_ids = BTreeSet::new();
    let mut forced: BTreeMap<ResourceId, ResourceId> = BTreeMap::new();
    let changes = loop {
        let mut changes: Vec<Change> = desired
            .iter()
            .filter_map(|want| change_for(want, &live_by_id, &new_ids, forced.get(&want.id)))
            .collect();
        let more_forced = cascade(desired, &live_by_id, &changes);
        let grown: BTreeSet<ResourceId> = changes
            .iter()
            .filter(|c| match c.action {
                Action::Create | Action::Replace => true,
                Action::Update => c.id.kind().is_some_and(|k| k.id_changes_on_update()),
                Action::Delete => false,
            })
            .map(|c| c.id.clone())
            .chain(more_forced.keys().cloned())
            .collect();
        if grown == new_ids && more_forced.keys().all(|id| forced.contains_key(id)) {
            for change in &mut changes {
                change.create_before_destroy = change.action == Action::Replace
                    && change
                        .id
                        .kind()
                        .is_some_and(|k| k.created_before_destroyed());
            }
            break changes;
        }
        new_ids = grown;
        forced.extend(more_forced);
    };
    let mut changes = changes;
    name_what_is_created(&mut changes);
    let duplicates = duplicates(live);
    let wanted: std::collections::BTreeSet<&ResourceId> = desired.iter().map(|d| &d.id).collect();
    // An extra copy of a logical id is reported, not deleted: which copy is
    // the real one is not poolside's to guess.
    for have in live
        .iter()
        .filter(|l| !wanted.contains(&l.id) && l.id.copy_of().is_none())
        .chain(&superseded)
    {
        changes.push(Change {
            id: have.id.clone(),
            action: Action::Delete,
            properties: Vec::new(),
            desired: None,
            live: Some(have.clone()),
            dependencies: Vec::new(),
            replaced_because: None,
            create_before_destroy: false,
        });
    }
    Plan {
        environment: environment.to_string(),
        summary: Summary::of(&changes),
        changes,
        warnings,
        fingerprint: None,
        duplicates,
        customer_network: Vec::new(),
        refused: Vec::new(),
        database: None,
    }
}

/// A replacement made before its old resource is deleted
/// (`Kind::created_before_destroyed`) leaves two live copies of one id for a
/// moment; a run stopped then finds both. They are not a duplicate to refuse
/// when exactly one matches what is wanted on the properties that cannot
/// change in place: that one is current, the others are the old ones still
/// to delete (returned apart, under their copy ids).
fn settle_replacements(desired: &[Desired], live: &[Live]) -> (Vec<Live>, Vec<Live>) {
    let mut live = live.to_vec();
    let mut superseded = Vec::new();
    for want in desired {
        if !want.id.kind().is_some_and(|k| k.created_before_destroyed()) {
            continue;
        }
        let copies: Vec<usize> = (0..live.len())
            .filter(|&i| live[i].id == want.id || live[i].id.copy_of().as_ref() == Some(&want.id))
            .collect();
        if copies.len() < 2 {
            continue;
        }
        let current: Vec<usize> = copies
            .iter()
            .copied()
            .filter(|&i| {
                !diff(Some(&live[i].spec), &want.spec)
                    .iter()
                    .any(|p| p.forces_replacement)
            })
            .collect();
        let [current] = current[..] else {
            continue;
        };
        live[current].id = want.id.clone();
        // Highest index first, so the indices left stay valid.
        for &i in copies.iter().rev().filter(|&&i| i != current) {
            let mut old = live.remove(i);
            old.id = ResourceId(format!("{}#{}", want.id, old.physical_id));
            superseded.push(old);
        }
    }
    (live, superseded)
}

/// The logical ids with more than one live copy (`identify` names the extra
/// copies `<id>#<aws id>`).
fn duplicates(live: &[Live]) -> Vec<Duplicate> {
    let mut by_id: BTreeMap<ResourceId, Vec<String>> = BTreeMap::new();
    for extra in live {
        if let Some(original) = extra.id.copy_of() {
            by_id
                .entry(original)
                .or_default()
                .push(extra.physical_id.clone());
        }
    }
    by_id
        .into_iter()
        .map(|(id, extras)| {
            let first = live
                .iter()
                .find(|l| l.id == id)
                .map(|l| l.physical_id.clone());
            Duplicate {
                physical_ids: first.into_iter().chain(extras).collect(),
                id,
            }
        })
        .collect()
}

/// The live resources that must be replaced because something they refer
/// to is replaced, each with that cause:
/// - what names it by logical id (a NAT gateway's subnet, a route's NAT
///   gateway): nothing else would move it to the new resource;
/// - what refers to it by AWS id, when AWS refuses to delete it while
///   referred to (`Kind::referrers_block_deletion`) and the new one cannot
///   be made first (`Kind::created_before_destroyed`); otherwise the
///   referrer is updated to the new id after the new one exists.
fn cascade(
    desired: &[Desired],
    live_by_id: &BTreeMap<&ResourceId, &Live>,
    changes: &[Change],
) -> BTreeMap<ResourceId, ResourceId> {
    let replaced: BTreeSet<&ResourceId> = changes
        .iter()
        .filter(|c| c.action == Action::Replace)
        .map(|c| &c.id)
        .collect();
    let mut forced = BTreeMap::new();
    for want in desired {
        if replaced.contains(&want.id) || !live_by_id.contains_key(&want.id) {
            continue;
        }
        let logical = want.spec.logical_references();
        let cause = want.spec.references().into_iter().find(|r| {
            replaced.contains(r)
                && (logical.contains(r)
                    || r.kind().is_some_and(|k| {
                        k.referrers_block_deletion() && !k.created_before_destroyed()
                    }))
        });
        if let Some(cause) = cause {
            forced.insert(want.id.clone(), cause);
        }
    }
    forced
}

fn change_for(
    want: &Desired,
    live_by_id: &BTreeMap<&ResourceId, &Live>,
    new_ids: &BTreeSet<ResourceId>,
    replaced_because: Option<&ResourceId>,
) -> Option<Change> {
    let spec = want.spec.substitute(&mut |r| {
        if new_ids.contains(&r.id) {
            return None;
        }
        let live = live_by_id.get(&r.id)?;
        match &r.attribute {
            None => Some(live.physical_id.clone()),
            Some(attribute) => live.attributes.get(attribute).cloned(),
        }
    });
    match live_by_id.get(&want.id) {
        None => Some(Change {
            id: want.id.clone(),
            action: Action::Create,
            properties: diff(None, &spec),
            desired: Some(spec),
            live: None,
            dependencies: want.dependencies(),
            replaced_because: None,
            create_before_destroy: false,
        }),
        Some(have) => {
            let properties = diff(Some(&have.spec), &spec);
            if properties.is_empty() && replaced_because.is_none() {
                return None;
            }
            let replaces_itself = properties.iter().any(|p| p.forces_replacement);
            let action = if replaces_itself || replaced_because.is_some() {
                Action::Replace
            } else {
                Action::Update
            };
            Some(Change {
                id: want.id.clone(),
                action,
                properties,
                desired: Some(spec),
                live: Some((*have).clone()),
                dependencies: want.dependencies(),
                replaced_because: (!replaces_itself)
                    .then(|| replaced_because.cloned())
                    .flatten(),
                create_before_destroy: false,
            })
        }
    }
}

/// A property that names a resource this plan creates shows the name it
/// will have, not its logical id (`parameter_group: "…-postgres16" ->
/// "…-postgres17"` in a major upgrade), where that name is known.
pub fn name_what_is_created(changes: &mut [Change]) {
    let names: BTreeMap<String, String> = changes
        .iter()
        .filter(|c| c.action == Action::Create)
        .filter_map(|c| {
            Some((
                c.id.0.clone(),
                c.desired.as_ref()?.chosen_name()?.to_string(),
            ))
        })
        .collect();
    for property in changes.iter_mut().flat_map(|c| c.properties.iter_mut()) {
        if let Some(Value::String(after)) = &property.after {
            if let Some(name) = names.get(after) {
                property.after = Some(Value::String(name.clone()));
            }
        }
    }
}

/// Property-by-property difference. Arrays are compared as sets (every list in
/// a spec is a set), objects key by key, anything else as a whole.
pub fn diff(before: Option<&Spec>, after: &Spec) -> Vec<PropertyChange> {
    let immutable = after.immutable_properties();
    let after_props = as_object(after);
    let before_props = before
        .map(|b| as_object(&b.with_unreported_from(after)))
        .unwrap_or_default();
    let mut keys: Vec<&String> = after_props.keys().chain(before_props.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        let old = before_props.get(key).filter(|v| !v.is_null());
        let new = after_props.get(key).filter(|v| !v.is_null());
        if old == new {
            continue;
        }
        let forces_replacement = before.is_some() && immutable.contains(&key.as_str());
        match (old, new) {
            (Some(Value::Array(a)), Some(Value::Array(b))) => {
                for removed in a.iter().filter(|x| !b.contains(x)) {
                    out.push(element(
                        key,
                        Some(removed.clone()),
                        None,
                        forces_replacement,
                    ));
                }
                for added in b.iter().filter(|x| !a.contains(x)) {
                    out.push(element(key, None, Some(added.clone()), forces_replacement));
                }
            }
            _ => diff_value(key, old, new, forces_replacement, &mut out),
        }
    }
    out
}

/// Objects (tags, a container's environment, a policy) are compared key by
/// key, so a plan names the one entry that changed.
fn diff_value(
    path: &str,
    old: Option<&Value>,
    new: Option<&Value>,
    forces_replacement: bool,
    out: &mut Vec<PropertyChange>,
) {
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let (x, y) = (a.get(k), b.get(k));
                if x != y {
                    diff_value(&format!("{path}.{k}"), x, y, forces_replacement, out);
                }
            }
        }
        _ => out.push(element(
            path,
            old.cloned(),
            new.cloned(),
            forces_replacement,
        )),
    }
}

fn element(
    property: &str,
    before: Option<Value>,
    after: Option<Value>,
    forces_replacement: bool,
) -> PropertyChange {
    PropertyChange {
        property: property.to_string(),
        before,
        after,
        forces_replacement,
    }
}

fn as_object(spec: &Spec) -> serde_json::Map<String, Value> {
    match serde_json::to_value(spec).expect("specs serialize") {
        Value::Object(map) => map,
        _ => unreachable!("every spec is a struct"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use crate::resources::spec::*;

    fn rules(ingress: &[Rule]) -> Spec {
        Spec::SecurityGroupRules(SecurityGroupRulesSpec {
            group: ResourceId("sg/database".into()),
            ingress: ingress.iter().cloned().collect(),
            egress: Default::default(),
        })
    }

    #[test]
    fn an_extra_rule_is_one_removal() {
        let ours = Rule::tcp(5432, "sg/api", "from the API tasks");
        let by_hand = Rule::tcp(22, "0.0.0.0/0", "ssh");
        let changes = diff(Some(&rules(&[ours.clone(), by_hand])), &rules(&[ours]));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].property, "ingress");
        assert!(changes[0].after.is_none());
        assert_eq!(changes[0].before.as_ref().unwrap()["from_port"], 22);
    }

    #[test]
    fn an_immutable_change_replaces_and_a_tag_change_updates() {
        let subnet = |cidr: &str, owner: &str| {
            Spec::Subnet(SubnetSpec {
                vpc: ResourceId("vpc/main".into()),
                cidr: cidr.into(),
                availability_zone: "eu-west-1a".into(),
                tags: [("owner".to_string(), owner.to_string())].into(),
            })
        };
        let live = vec![Live {
            id: ResourceId("subnet/a".into()),
            physical_id: "subnet-1".into(),
            spec: subnet("10.0.0.0/24", "x"),
            attributes: Default::default(),
        }];
        let want = |cidr: &str, owner: &str| {
            vec![Desired {
                id: ResourceId("subnet/a".into()),
                spec: subnet(cidr, owner),
                after: vec![],
            }]
        };
        assert!(plan("e", &want("10.0.0.0/24", "x"), &live, vec![]).is_empty());
        let tag_change = plan("e", &want("10.0.0.0/24", "y"), &live, vec![]);
        assert_eq!(tag_change.changes[0].action, Action::Update);
        assert_eq!(tag_change.changes[0].properties[0].property, "tags.owner");
        let cidr_change = plan("e", &want("10.0.1.0/24", "x"), &live, vec![]);
        assert_eq!(cidr_change.changes[0].action, Action::Replace);
        let gone = plan("e", &[], &live, vec![]);
        assert_eq!(gone.changes[0].action, Action::Delete);
    }

    fn network(public_cidr: &str) -> (Vec<Desired>, Vec<Live>) {
        let subnet = Spec::Subnet(SubnetSpec {
            vpc: ResourceId("vpc/main".into()),
            cidr: public_cidr.into(),
            availability_zone: "eu-west-1a".into(),
            tags: Default::default(),
        });
        let nat = Spec::NatGateway(NatGatewaySpec {
            subnet: ResourceId("subnet/public-a".into()),
            elastic_ip: ResourceId("eip/a".into()),
            tags: Default::default(),
        });
        let routes = Spec::RouteTable(RouteTableSpec {
            vpc: ResourceId("vpc/main".into()),
            routes: [Route {
                destination: "0.0.0.0/0".into(),
                target: ResourceId("nat/a".into()),
            }]
            .into(),
            subnets: Default::default(),
            tags: Default::default(),
        });
        let balancer = |subnet: &str| {
            Spec::LoadBalancer(LoadBalancerSpec {
                name: "poolside-e".into(),
                scheme: "internet-facing".into(),
                subnets: [subnet.to_string()].into(),
                security_groups: Default::default(),
                tags: Default::default(),
            })
        };
        let want = |id: &str, spec: Spec| Desired {
            id: ResourceId(id.into()),
            spec,
            after: vec![],
        };
        let have = |id: &str, physical: &str, spec: Spec| Live {
            id: ResourceId(id.into()),
            physical_id: physical.into(),
            spec,
            attributes: Default::default(),
        };
        let old_subnet = Spec::Subnet(SubnetSpec {
            vpc: ResourceId("vpc/main".into()),
            cidr: "10.0.0.0/24".into(),
            availability_zone: "eu-west-1a".into(),
            tags: Default::default(),
        });
        let desired = vec![
            want("subnet/public-a", subnet),
            want("nat/a", nat.clone()),
            want("route-table/private", routes.clone()),
            want("load-balancer/main", balancer("${subnet/public-a}")),
        ];
        let live = vec![
            have("subnet/public-a", "subnet-1", old_subnet),
            have("nat/a", "nat-1", nat),
            have("route-table/private", "rtb-1", routes),
            have("load-balancer/main", "arn:lb", balancer("subnet-1")),
        ];
        (desired, live)
    }

    /// Measured before: a subnet whose CIDR changed was planned alone; on AWS
    /// its delete fails while the NAT gateway and the load balancer are in it.
    #[test]
    fn a_replaced_subnet_takes_what_names_it_along_and_moves_what_refers_to_its_id() {
        let (desired, live) = network("10.0.10.0/24");
        let plan = plan("e", &desired, &live, vec![]);
        let change = |id: &str| plan.changes.iter().find(|c| c.id.0 == id).unwrap();
        let subnet = change("subnet/public-a");
        assert_eq!(subnet.action, Action::Replace);
        assert!(subnet.create_before_destroy, "the new subnet is made first");
        // The NAT gateway names the subnet by logical id, the route table the
        // NAT gateway: both are replaced, each saying why.
        let nat = change("nat/a");
        assert_eq!(
            (
                nat.action,
                nat.replaced_because.as_ref().map(|r| r.0.as_str())
            ),
            (Action::Replace, Some("subnet/public-a"))
        );
        assert!(!nat.create_before_destroy);
        let routes = change("route-table/private");
        assert_eq!(
            (
                routes.action,
                routes.replaced_because.as_ref().map(|r| r.0.as_str())
            ),
            (Action::Replace, Some("nat/a"))
        );
        // The load balancer refers to the subnet's AWS id: it moves over.
        assert_eq!(change("load-balancer/main").action, Action::Update);
        assert_eq!(plan.summary.replace, 3);

        // A run stopped after the new subnet was made finds two copies: the
        // one with the wanted CIDR is current, the other is deleted, and
        // nothing is a duplicate to refuse.
        let mut stopped = live.clone();
        stopped[0].id = ResourceId("subnet/public-a#subnet-1".into());
        stopped.push(Live {
            id: ResourceId("subnet/public-a".into()),
            physical_id: "subnet-2".into(),
            spec: desired[0].spec.clone(),
            attributes: Default::default(),
        });
        let resumed = super::plan("e", &desired, &stopped, vec![]);
        assert!(resumed.duplicates.is_empty(), "{:?}", resumed.duplicates);
        let deleted: Vec<&str> = resumed
            .changes
            .iter()
            .filter(|c| c.action == Action::Delete)
            .map(|c| c.id.0.as_str())
            .collect();
        assert_eq!(deleted, ["subnet/public-a#subnet-1"]);
        assert!(resumed.changes.iter().all(|c| c.id.0 != "subnet/public-a"));
    }

    #[test]
    fn a_split_puts_the_gate_what_depends_on_it_and_deletes_second() {
        let change = |id: &str, action: Action, deps: &[&str]| Change {
            id: ResourceId(id.into()),
            action,
            properties: vec![],
            desired: None,
            live: None,
            dependencies: deps.iter().map(|d| ResourceId(d.to_string())).collect(),
            replaced_because: None,
            create_before_destroy: false,
        };
        let plan = Plan {
            environment: "e".into(),
            changes: vec![
                change("task-definition/api", Action::Create, &[]),
                change("service/api", Action::Create, &["task-definition/api"]),
                change("scaling/api", Action::Create, &["service/api"]),
                change("alarm/cpu", Action::Create, &["scaling/api"]),
                change("db-instance/main", Action::Update, &[]),
                change("alarm/old", Action::Delete, &[]),
            ],
            warnings: vec![],
            summary: Summary::default(),
            fingerprint: None,
            duplicates: Vec::new(),
            customer_network: Vec::new(),
            refused: Vec::new(),
            database: None,
        };
        let (first, second) = plan.split_at(&ResourceId("service/api".into()));
        let ids = |p: &Plan| p.changes.iter().map(|c| c.id.0.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&first), ["task-definition/api", "db-instance/main"]);
        assert_eq!(
            ids(&second),
            ["service/api", "scaling/api", "alarm/cpu", "alarm/old"]
        );
        assert_eq!(second.summary.create, 3);
        assert_eq!(second.summary.delete, 1);
    }
}
