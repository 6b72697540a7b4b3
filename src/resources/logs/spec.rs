//! The specs of the API's log group: what is desired and what discovery
//! reads back, compared field by field. Data only; no AWS call.

use crate::model::refs::Reference;
use crate::model::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogGroupSpec {
    pub name: String,
    pub retention_days: i32,
    pub tags: Tags,
}

impl Properties for LogGroupSpec {
    const IMMUTABLE: &'static [&'static str] = &["name"];

    fn substitute(&self, resolve: &mut dyn FnMut(&Reference) -> Option<String>) -> Self {
        substitute_serialized(self, resolve)
    }
}
