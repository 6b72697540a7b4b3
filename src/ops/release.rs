//! `poolside promote --from SRC --to DST`: moves the release SRC runs to DST.
//!
//! A release is what an environment runs: the PostgREST image of its task
//! definition (by digest) and its schema version (the last migration in its
//! ledger, which must be the last one this build ships: the release that
//! moves on is the one that was tested).
//!
//! 1. The gates of a phase promotion, on the source.
//! 2. The image is put into the target's repository under the same tag, by
//!    digest: over the registry API on AWS (every blob, then the manifests'
//!    own bytes), through ECR's manifest API on the emulator (which keeps no
//!    layers). Nothing is rebuilt; the digest is checked after.
//! 3. The target's file gets the source's `api.image_tag` (toml_edit keeps
//!    its comments), and the target is deployed under its lock: migrations
//!    first (the schema step precedes the service), then the service rolls
//!    to the new task definition by the phase's deployment strategy (rolling,
//!    canary or linear, with rollback). The history records a `promote`.
//!
//! Not done: copying a release between accounts or regions.

use super::promote::{self, PromoteOptions};
use super::Session;
use super::{deploy, guarded};
use super::{exit, RunOptions};
use crate::config::{self, Config};
use crate::database::{self, migrations};
use crate::model::{Kind, ResourceId};
use crate::output::{self, Format};
use crate::resources::registry::{self, EcrImage};
use anyhow::{anyhow, bail, Context as _};
use oci_client::secrets::RegistryAuth;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What the source runs, as it moves to the target.
#[derive(Debug, serde::Serialize)]
struct Release {
    environment: String,
    /// The image of the source's task definition.
    image: String,
    digest: String,
    /// `None` when the source's database could not be read from here.
    schema_version: Option<i64>,
    /// `api.image_tag` as the source's file gives it.
    image_tag: String,
}

/// Moves the release `source_config`'s environment runs to
/// `target_config`'s, once the source's gates pass.
pub async fn promote_release(
    run: &RunOptions,
    source_config: Config,
    target_config: Config,
    options: &PromoteOptions,
) -> anyhow::Result<ExitCode> {
    super::session::refuse_unsafe_migrations()?;
    let (from, to) = (source_config.name.clone(), target_config.name.clone());
    let (from, to) = (from.as_str(), to.as_str());
    if source_config.region != target_config.region
        || source_config.endpoint_url != target_config.endpoint_url
    {
        bail!(
            "`{from}` ({}) and `{to}` ({}) are in different regions or targets: a release moves between repositories of one registry (one account and region); copying across them is not built yet",
            source_config.region,
            target_config.region
        );
    }
    if source_config.api.image_source != target_config.api.image_source {
        bail!(
            "`{from}` copies PostgREST from {} and `{to}` from {} (api.image_source): one tag would name two images. Give both files the same image_source first",
            source_config.api.image_source,
            target_config.api.image_source
        );
    }
    let image_tag = source_config
        .api
        .image_suffix
        .trim_start_matches([':', '@'])
        .to_string();
    let path = run.environment_file(to);
    let promoted_text = with_image_tag(&path, &image_tag)?;
    let promoted = config::parse(&path.display().to_string(), to, promoted_text.clone())
        .map_err(|invalid| anyhow!(config::ConfigError::Invalid(invalid)))
        .with_context(|| format!("`{to}` with image_tag {image_tag:?} would not be valid"))?;

    let source = Session::open(source_config).await?;
    let target = Session::open(target_config).await?;
    if source.account_id() != target.account_id() {
        bail!(
            "`{from}` is in account {} and `{to}` in {}: copying a release across accounts is not built yet",
            source.account_id(),
            target.account_id()
        );
    }

    let gates = promote::gates(&source, from, options.bake, &promoted).await?;
    promote::print_gates(&gates, run.output);
    let failed: Vec<&str> = gates.failed().iter().map(|c| c.name).collect();
    if !failed.is_empty() {
        run.print_stats(&source);
        bail!(
            "promotion of `{from}`'s release to `{to}` refused: gates on `{from}` failed ({}); nothing was changed",
            failed.join(", ")
        );
    }
    let release = release_of(&source, from, image_tag).await?;
    print_release(&release, run.output);

    let promotion = Promotion {
        promoted,
        path: &path,
        promoted_text: &promoted_text,
        release: &release,
    };
    guarded::run(&target, "promote", options.lock_timeout, async |guard| {
        promote_locked(run, &source, guard, options, promotion).await
    })
    .await
}

/// The environment a release goes to, its file as it will be, and the release.
struct Promotion<'a> {
    promoted: Config,
    path: &'a Path,
    promoted_text: &'a str,
    release: &'a Release,
}

/// The image and schema the source runs, checked: its image is in its
/// repository, and its schema is the one this build ships.
async fn release_of(source: &Session, from: &str, image_tag: String) -> anyhow::Result<Release> {
    let task_definition = ResourceId::new(Kind::TaskDefinition, "api");
    let image = source
        .cx
        .attribute(&task_definition, "image")
        .ok_or_else(|| anyhow!("`{from}` runs no task definition: deploy it first"))?;
    let digest = registry::image_digest(&source.cx, &image)
        .await?
        .ok_or_else(|| {
            anyhow!(
                "{image} is not in `{from}`'s repository: run `poolside image push --env {from}`"
            )
        })?;
    let schema_version = database::inspect(&source.cx, &source.config)
        .await
        .ok()
        .and_then(|i| i.migrations.applied_version);
    let shipped = migrations::shipped().last().map(|s| s.migration.version);
    if let (Some(runs), Some(ships)) = (schema_version, shipped) {
        if runs != ships {
            bail!(
                "`{from}` runs schema version {runs}, but this poolside ships {ships}: deploy `{from}` with it first, so that the release that moves on is the one that was tested there"
            );
        }
    }
    Ok(Release {
        environment: from.to_string(),
        image,
        digest,
        schema_version,
        image_tag,
    })
}

async fn promote_locked(
    run: &RunOptions,
    source: &Session,
    guard: &guarded::Guarded,
    options: &PromoteOptions,
    promotion: Promotion<'_>,
) -> anyhow::Result<ExitCode> {
    let Promotion {
        promoted,
        path,
        promoted_text,
        release,
    } = promotion;
    let to = options.to.as_str();
    let next = Session::open(promoted).await?;
    let plan = next.plan().await?;
    let database = crate::drift::database_plan(&next.cx, &next.config).await;
    let plan = plan.with_database(database);
    guard.note_plan(&plan);
    let uri = next
        .cx
        .attribute(&ResourceId::new(Kind::Repository, "postgrest"), "uri")
        .ok_or_else(|| anyhow!("`{to}` has no image repository yet: deploy it first"))?;
    let source_image = EcrImage::parse(&release.image)
        .ok_or_else(|| anyhow!("{} is not an ECR image", release.image))?;
    let tag = source_image
        .tag
        .ok_or_else(|| anyhow!("{} names no tag to carry over", release.image))?;
    let target_image = format!("{uri}:{tag}");
    let present = registry::image_digest(&next.cx, &target_image).await?;
    if let Some(other) = present.as_ref().filter(|d| **d != release.digest) {
        bail!(
            "{target_image} already names another image ({other}), not the release's {}: a tag moved under a running environment changes what its next task pulls. Remove that tag from `{to}`'s repository, or promote after giving the release a new image_tag; nothing was changed",
            release.digest
        );
    }
    refuse_early_contract(&next, to, &target_image).await?;
    if options.dry_run {
        guard.note_dry_run();
        output::print_plan(&plan, run.output, run.compact);
        run.print_stats(&next);
        let copy = if present.is_some() {
            format!("{target_image} is already there")
        } else {
            format!(
                "would copy {}@{} to {target_image}",
                release.image, release.digest
            )
        };
        eprintln!("Dry run: the gates pass; {copy}; nothing was changed.");
        return Ok(ExitCode::from(exit::OK));
    }
    if present.is_none() {
        copy_image(source, &next, &source_image, release, &target_image, tag).await?;
    }
    let landed = registry::image_digest(&next.cx, &target_image).await?;
    if landed.as_deref() != Some(release.digest.as_str()) {
        bail!(
            "{target_image} reads {} after the copy, not the release's {}: nothing else was changed",
            landed.as_deref().unwrap_or("nothing"),
            release.digest
        );
    }
    let target = Target {
        next: &next,
        path,
        promoted_text,
        image: &target_image,
    };
    deploy_release(run, guard, options, &target, release).await
}

/// Expand, then contract: a contracting migration waits for a release
/// that no longer needs what it removes to be the one running.
async fn refuse_early_contract(next: &Session, to: &str, target_image: &str) -> anyhow::Result<()> {
    let runs_release = next
        .cx
        .attribute(&ResourceId::new(Kind::TaskDefinition, "api"), "image")
        .is_some_and(|running| running == target_image);
    if !runs_release {
        let contracting = database::pending_contracts(&next.cx, &next.config).await;
        if !contracting.is_empty() {
            bail!(
                "{} would be applied while `{to}`'s current release still serves traffic, and {} marked `{}`: it removes what that release may still use. Promote a release without it first; once that release runs in `{to}`, the next promotion applies it. Nothing was changed",
                contracting.join(", "),
                if contracting.len() == 1 { "it is" } else { "they are" },
                migrations::CONTRACT_MARKER
            );
        }
    }
    Ok(())
}

/// Where a release goes: the environment's session, its file and the text
/// that names the release, and the image in its repository.
struct Target<'a> {
    next: &'a Session,
    path: &'a Path,
    promoted_text: &'a str,
    image: &'a str,
}

/// Writes the release into the environment's file and deploys it; puts the
/// file back when nothing changed or the service still runs the previous
/// release.
async fn deploy_release(
    run: &RunOptions,
    guard: &guarded::Guarded,
    options: &PromoteOptions,
    target: &Target<'_>,
    release: &Release,
) -> anyhow::Result<ExitCode> {
    let (to, next, path) = (options.to.as_str(), target.next, target.path);
    let (promoted_text, target_image) = (target.promoted_text, target.image);
    // The file first, as a phase promotion does: a deploy interrupted after
    // this is finished by the next `poolside deploy`.
    let original = std::fs::read_to_string(path)?;
    std::fs::write(path, promoted_text)
        .with_context(|| format!("writing image_tag into {}", path.display()))?;
    let deployed = deploy::deploy_locked(run, next, guard, &options.deploy_into(to)).await;
    if deployed.is_ok() {
        guard.note_release(&next.config);
    }
    let changed_aws = next
        .cx
        .clients
        .stats
        .snapshot()
        .operations
        .iter()
        .any(|op| {
            op.mutating
                && !matches!(
                    op.operation.as_str(),
                    "PutObject" | "DeleteObject" | "PutImage"
                )
        });
    if deployed.is_err() && !changed_aws {
        // Refused or cancelled before any change: the file goes back too.
        std::fs::write(path, original)?;
    } else if let Some(previous) = match &deployed {
        Err(_) => still_running_another(next, target_image).await,
        Ok(_) => None,
    } {
        // ECS rolled the release back (an alarm during the shift), or the
        // service never moved: the file names what runs again.
        std::fs::write(path, original)?;
        eprintln!(
            "`{to}` still runs its previous release ({previous}): {} is put back as it was; promote again once the cause is fixed.",
            path.display()
        );
    } else if deployed.is_err() {
        eprintln!(
            "{} now says image_tag = \"{}\"; run `poolside deploy --env {to}` to finish the promotion.",
            path.display(),
            release.image_tag
        );
    }
    deployed
}

/// The image the target's service runs, when it is not `image` (read from
/// ECS, not from discovery: a rollback happened after discovery).
async fn still_running_another(target: &Session, image: &str) -> Option<String> {
    let cx = &target.cx;
    let service = crate::resources::ecs::service_counts(
        cx,
        &crate::names::cluster_name(&target.config),
        &crate::names::service_name(&target.config),
    )
    .await
    .ok()??;
    let (_, container) =
        crate::resources::ecs::task_definitions::task_definition(cx, &service.task_definition)
            .await
            .ok()?;
    (container.image != image).then_some(container.image)
}

/// Puts the release's image into the target's repository by digest.
async fn copy_image(
    source: &Session,
    target: &Session,
    source_image: &EcrImage<'_>,
    release: &Release,
    target_image: &str,
    tag: &str,
) -> anyhow::Result<()> {
    let target_repository = EcrImage::parse(target_image)
        .map(|i| i.repository.to_string())
        .ok_or_else(|| anyhow!("{target_image} is not an ECR image"))?;
    if target.cx.emulator {
        // The emulator's ECR keeps manifests, not layers.
        return registry::put_manifest(
            &target.cx,
            source_image,
            &release.digest,
            &target_repository,
            tag,
        )
        .await;
    }
    let (user, password) = registry::login(&source.cx).await?;
    let auth = RegistryAuth::Basic(user, password);
    let from_text = format!(
        "{}@{}",
        release.image.rsplit_once(':').map_or("", |(r, _)| r),
        release.digest
    );
    let from = crate::image::Endpoint {
        reference: from_text.parse().map_err(|e| anyhow!("{from_text}: {e}"))?,
        auth: auth.clone(),
    };
    let to = crate::image::Endpoint {
        reference: target_image
            .parse()
            .map_err(|e| anyhow!("{target_image}: {e}"))?,
        auth,
    };
    crate::image::copy(&crate::image::client(vec![]), &from, &to)
        .await
        .with_context(|| format!("copying {from_text} to {target_image}"))?;
    Ok(())
}

fn print_release(release: &Release, format: Format) {
    match format {
        Format::Json => output::json_line("release", release),
        Format::Human => eprintln!(
            "Release of `{}`: {} ({}), schema version {}",
            release.environment,
            release.image,
            release.digest,
            release.schema_version.map_or(
                "not read (the database is not reachable from here)".to_string(),
                |v| { v.to_string() }
            )
        ),
    }
}

/// The file's text with `api.image_tag` set, everything else kept.
fn with_image_tag(path: &PathBuf, image_tag: &str) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut document: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("{} is not TOML", path.display()))?;
    let api = document
        .entry("api")
        .or_insert(toml_edit::Item::Table(toml_edit::Table::new()));
    let Some(api) = api.as_table_like_mut() else {
        bail!("{}: `api` is not a table", path.display());
    };
    let decor = api
        .get("image_tag")
        .and_then(|item| item.as_value())
        .map(|v| v.decor().clone());
    let mut value = toml_edit::Value::from(image_tag);
    if let Some(decor) = decor {
        *value.decor_mut() = decor;
    }
    api.insert("image_tag", toml_edit::Item::Value(value));
    Ok(document.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn shipped(version: i64, file: &str, sql: &'static str) -> migrations::Shipped {
        migrations::Shipped {
            migration: sqlx::migrate::Migration::new(
                version,
                Cow::Borrowed("test"),
                sqlx::migrate::MigrationType::Simple,
                Cow::Borrowed(sql),
                false,
            ),
            file: file.into(),
        }
    }

    #[test]
    fn only_pending_migrations_marked_as_contracting_hold_a_release_back() {
        let all = [
            shipped(
                6,
                "sql/migrations/0006_add_column.sql",
                "ALTER TABLE t ADD COLUMN c int;",
            ),
            shipped(
                7,
                "sql/migrations/0007_drop_column.sql",
                "-- poolside: contract\nALTER TABLE t DROP COLUMN old;",
            ),
            shipped(
                8,
                "sql/migrations/0008_mentions.sql",
                "-- this is not a poolside: contract marker line\nSELECT 1;",
            ),
        ];
        let pending: Vec<String> = all.iter().map(|s| s.file.clone()).collect();
        assert_eq!(
            migrations::contracting_pending(&pending, &all),
            ["sql/migrations/0007_drop_column.sql"]
        );
        assert!(migrations::contracting_pending(&pending[..1], &all).is_empty());
        // The migrations this build ships expand only.
        assert!(migrations::shipped().iter().all(|s| !s.contracts()));
    }
}
