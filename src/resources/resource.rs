//! What each kind of resource does in AWS, implemented by its family next to
//! the calls it makes: create one, bring one to its desired spec, delete
//! one. Each must be idempotent where AWS allows (a retried create after an
//! interruption finds what the first made), and may not decide *whether* to
//! act: the engine's plan has done that.

use super::context::Context;
use super::spec::Live;
use super::waits::Waits;
use crate::model::{Properties, ResourceId};

pub(crate) trait Resource: Properties {
    /// Creates the resource `id` with this spec and returns its AWS id (an
    /// ARN for the kinds AWS names by ARN).
    async fn create(
        &self,
        cx: &Context,
        id: &ResourceId,
        waits: &Waits<'_>,
    ) -> anyhow::Result<String>;

    /// Brings `live`, whose spec is `old`, to this spec, in place.
    async fn update(
        &self,
        cx: &Context,
        live: &Live,
        old: &Self,
        waits: &Waits<'_>,
    ) -> anyhow::Result<()>;

    /// Deletes `live`, whose spec this is. Already gone is done.
    async fn delete(&self, cx: &Context, live: &Live, waits: &Waits<'_>) -> anyhow::Result<()>;
}
