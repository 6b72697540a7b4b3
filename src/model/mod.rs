//! The vocabulary shared by the blueprint (desired), discovery (live) and the
//! engine (diff and apply): ids, kinds, tags, `${...}` references, and the
//! [`Properties`] every spec answers. The specs themselves live with their
//! families, in `resources/<family>/spec.rs`.
//!
//! A resource is named by a logical [`ResourceId`] such as `subnet/private-eu-west-1a`,
//! stored on the AWS resource as the `poolside:id` tag. References between
//! resources use logical ids too, so desired and live specs compare directly;
//! something poolside does not manage (a rule added by hand that points at a
//! foreign group, say) keeps its AWS id.
//!
//! Contract: data and pure functions only (no AWS call, no I/O); everything
//! above depends on it, and it depends on nothing of poolside's but serde.

mod id;
mod properties;
pub mod refs;

pub use id::*;
pub use properties::*;
