//! What the engine asks of every kind's spec, without calling AWS: which
//! properties force a replacement, which resources it names, and how its
//! `${...}` references are filled in. Each family answers for its own specs
//! (in `resources/<family>/spec.rs`); the defaults suit a spec that names
//! nothing and holds no reference.

use super::id::ResourceId;
use super::refs::{self, Reference};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub trait Properties: Clone + Serialize {
    /// Properties AWS cannot change in place: a change to one replaces the resource.
    const IMMUTABLE: &'static [&'static str];

    /// The resources this one names by logical id (the network and data
    /// tiers), as opposed to `${...}` references, which plan fills in with
    /// AWS ids. A logical reference says nothing of which AWS resource it
    /// meant, so when that one is replaced, this one is replaced too.
    fn logical_references(&self) -> Vec<ResourceId> {
        vec![]
    }

    /// What must be done first although nothing in the spec names it (the
    /// service waits for the listener that sends it traffic).
    fn ordering(&self) -> Vec<ResourceId> {
        vec![]
    }

    /// The spec with its `${...}` references filled in where `resolve`
    /// knows them. Only the service tier's specs hold references.
    fn substitute(&self, _resolve: &mut dyn FnMut(&Reference) -> Option<String>) -> Self {
        self.clone()
    }

    /// The live spec with what AWS did not report taken from the desired
    /// one, so a setting the emulator never echoes is not a change.
    fn with_unreported_from(&self, _desired: &Self) -> Self {
        self.clone()
    }
}

/// [`Properties::substitute`] for a spec whose references are strings in
/// its serialized form: fills them in and reads the spec back.
pub fn substitute_serialized<T: Serialize + DeserializeOwned>(
    spec: &T,
    resolve: &mut dyn FnMut(&Reference) -> Option<String>,
) -> T {
    let value = serde_json::to_value(spec).expect("specs serialize");
    let filled = refs::substitute_json(&value, resolve);
    serde_json::from_value(filled).expect("filling in references keeps a spec's shape")
}
