//! The specs of the CloudWatch alarms and dashboard: what is desired and what discovery
//! reads back, compared field by field. Data only; no AWS call.

use crate::model::refs::Reference;
use crate::model::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlarmSpec {
    pub name: String,
    pub description: String,
    pub namespace: String,
    pub metric_name: String,
    /// `Sum`, `Average`, `Maximum`... or a percentile such as `p95`.
    pub statistic: String,
    pub dimensions: BTreeMap<String, String>,
    pub period_s: i32,
    pub evaluation_periods: i32,
    pub threshold: f64,
    pub comparison: String,
    pub treat_missing_data: String,
    pub actions: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DashboardSpec {
    pub name: String,
    pub body: Value,
}

impl Properties for AlarmSpec {
    const IMMUTABLE: &'static [&'static str] = &["name"];

    fn substitute(&self, resolve: &mut dyn FnMut(&Reference) -> Option<String>) -> Self {
        substitute_serialized(self, resolve)
    }
}

impl Properties for DashboardSpec {
    const IMMUTABLE: &'static [&'static str] = &["name"];

    fn substitute(&self, resolve: &mut dyn FnMut(&Reference) -> Option<String>) -> Self {
        substitute_serialized(self, resolve)
    }
}
