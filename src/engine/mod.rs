//! Plan and apply: the generic half of poolside, which knows resources only
//! through [`crate::model`] and [`crate::resources`].

pub mod apply;
pub mod events;
pub mod plan;
pub mod timeline;
