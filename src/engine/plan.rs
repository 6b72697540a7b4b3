//! Desired + live → the changes that make live look like desired.

use crate::model::{Desired, Live, ResourceId, Spec};
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
        };
        (part(first), part(second))
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

pub fn plan(environment: &str, desired: &[Desired], live: &[Live], warnings: Vec<String>) -> Plan {
    let live_by_id: BTreeMap<&ResourceId, &Live> = live.iter().map(|l| (&l.id, l)).collect();
    // A `${...}` reference is filled in with what exists, unless the plan
    // gives that resource a new id (create, replace, a new task definition
    // revision): then it stays a reference, so what refers to it changes too.
    // That can cascade, so repeat until the set of new ids stops growing.
    let mut new_ids = BTreeSet::new();
    let changes = loop {
        let changes: Vec<Change> = desired
            .iter()
            .filter_map(|want| change_for(want, &live_by_id, &new_ids))
            .collect();
        let grown: BTreeSet<ResourceId> = changes
            .iter()
            .filter(|c| match c.action {
                Action::Create | Action::Replace => true,
                Action::Update => c.id.kind().is_some_and(|k| k.id_changes_on_update()),
                Action::Delete => false,
            })
            .map(|c| c.id.clone())
            .collect();
        if grown == new_ids {
            break changes;
        }
        new_ids = grown;
    };
    let mut changes = changes;
    let duplicates = duplicates(live);
    let wanted: std::collections::BTreeSet<&ResourceId> = desired.iter().map(|d| &d.id).collect();
    // An extra copy of a logical id is reported, not deleted: which copy is
    // the real one is not poolside's to guess.
    for have in live
        .iter()
        .filter(|l| !wanted.contains(&l.id) && l.id.copy_of().is_none())
    {
        changes.push(Change {
            id: have.id.clone(),
            action: Action::Delete,
            properties: Vec::new(),
            desired: None,
            live: Some(have.clone()),
            dependencies: Vec::new(),
        });
    }
    Plan {
        environment: environment.to_string(),
        summary: Summary::of(&changes),
        changes,
        warnings,
        fingerprint: None,
        duplicates,
    }
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

fn change_for(
    want: &Desired,
    live_by_id: &BTreeMap<&ResourceId, &Live>,
    new_ids: &BTreeSet<ResourceId>,
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
        }),
        Some(have) => {
            let properties = diff(Some(&have.spec), &spec);
            if properties.is_empty() {
                return None;
            }
            let action = if properties.iter().any(|p| p.forces_replacement) {
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
            })
        }
    }
}

/// Property-by-property difference. Arrays are compared as sets (every list in
/// a spec is a set), objects key by key, anything else as a whole.
pub fn diff(before: Option<&Spec>, after: &Spec) -> Vec<PropertyChange> {
    let immutable = after.immutable_properties();
    let after_props = as_object(after);
    let before_props = before.map(as_object).unwrap_or_default();
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

    #[test]
    fn a_split_puts_the_gate_what_depends_on_it_and_deletes_second() {
        let change = |id: &str, action: Action, deps: &[&str]| Change {
            id: ResourceId(id.into()),
            action,
            properties: vec![],
            desired: None,
            live: None,
            dependencies: deps.iter().map(|d| ResourceId(d.to_string())).collect(),
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
