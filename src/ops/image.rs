//! `poolside image push|list`: the PostgREST image and the schema runner's
//! psql image copied into the environment's ECR repository (with the RDS
//! certificate authorities added), and what the repository holds.

use super::{exit, RunOptions, Session};
use crate::config::{Config, SchemaRunner};
use crate::database::in_vpc;
use crate::image::{self, Endpoint};
use crate::model::{Kind, ResourceId};
use crate::output::{self, Format};
use crate::resources::spec::Spec;
use crate::resources::{self, registry, AwsResultExt as _};
use anyhow::{anyhow, bail, Context as _};
use oci_client::secrets::RegistryAuth;
use oci_client::Reference;
use std::process::ExitCode;

/// Where the tasks find the RDS certificate authorities (the task
/// definition's PGSSLROOTCERT).
const RDS_CA_FILE: image::AddedFile = image::AddedFile {
    path: "etc/poolside/rds-ca-bundle.pem",
    contents: crate::database::RDS_CA_BUNDLE,
};

/// Copies the images environment `config` runs into its repository.
pub async fn push(run: &RunOptions, config: Config) -> anyhow::Result<ExitCode> {
    let emulator = config.endpoint_url.is_some();
    let mut copies = vec![(
        format!("{}{}", config.api.image_source, config.api.image_suffix),
        config.api.repository_suffix.clone(),
    )];
    if config.database.schema_runner == SchemaRunner::EcsTask {
        copies.push((
            format!(
                "{}:{}",
                in_vpc::RUNNER_IMAGE_SOURCE,
                in_vpc::RUNNER_IMAGE_TAG
            ),
            format!(":{}", in_vpc::RUNNER_REPOSITORY_TAG),
        ));
    }
    let session = Session::open(config).await?;
    let repository_uri = ensure_repository(&session).await?;
    for (source_text, suffix) in copies {
        let destination_text = format!("{repository_uri}{suffix}");
        if emulator {
            let registered = register_stand_in(&session, &source_text, &destination_text).await?;
            report_stand_in(run, &destination_text, registered.as_deref());
            continue;
        }
        let copied = copy_unless_present(&session, &source_text, &destination_text).await?;
        report(run, &destination_text, copied.as_ref());
    }
    Ok(ExitCode::from(exit::OK))
}

/// On an emulator: its ECR keeps manifests but no layers, and no task runs
/// (the local PostgREST stands in for them). What `promote --from` reads is
/// the image's entry in the repository, so one is registered: a manifest
/// naming the image it stands in for, under the tag the task definition
/// runs. Its digest is ECR's, as for a real push. `None` when it is there.
async fn register_stand_in(
    session: &Session,
    source_text: &str,
    destination_text: &str,
) -> anyhow::Result<Option<String>> {
    use sha2::Digest as _;
    let cx = &session.cx;
    if registry::image_exists(cx, destination_text).await? {
        return Ok(None);
    }
    let ecr_image = registry::EcrImage::parse(destination_text)
        .ok_or_else(|| anyhow!("{destination_text} is not an ECR image reference"))?;
    let config_blob = serde_json::json!({ "poolside_stand_in_for": source_text }).to_string();
    let config_digest = sha2::Sha256::digest(config_blob.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{}", hex(&config_digest)),
            "size": config_blob.len(),
        },
        "layers": [],
    });
    cx.clients
        .ecr
        .put_image()
        .registry_id(ecr_image.registry_id)
        .repository_name(ecr_image.repository)
        .image_manifest(manifest.to_string())
        .set_image_tag(ecr_image.tag.map(str::to_string))
        .send()
        .await
        .aws("PutImage")?;
    registry::image_digest(cx, destination_text)
        .await?
        .ok_or_else(|| anyhow!("{destination_text} was registered, but ECR does not list it"))
        .map(Some)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn report_stand_in(run: &RunOptions, destination: &str, registered: Option<&str>) {
    match (run.output, registered) {
        (Format::Json, registered) => output::json_line(
            "image",
            serde_json::json!({ "destination": destination, "copied": null, "stand_in": registered }),
        ),
        (Format::Human, None) => {
            println!("{destination} is already in the repository: nothing to register.")
        }
        (Format::Human, Some(digest)) => println!(
            "Registered {destination} ({digest}) on the emulator: a stand-in manifest, as its ECR keeps no layers; the local PostgREST runs the installed binary."
        ),
    }
}

/// Copies `source_text` to `destination_text` (in the environment's
/// repository) unless ECR already lists it; `None` when it did.
async fn copy_unless_present(
    session: &Session,
    source_text: &str,
    destination_text: &str,
) -> anyhow::Result<Option<image::Copied>> {
    let cx = &session.cx;
    if registry::image_exists(cx, destination_text).await? {
        return Ok(None);
    }
    let (user, password) = registry::login(&session.cx).await?;
    let source = source_text
        .parse::<Reference>()
        .map_err(|e| anyhow!("{source_text}: {e}"))?;
    let mut from = Endpoint {
        auth: crate::registry_credentials::for_registry(source.resolve_registry())
            .with_context(|| format!("the login for {}", source.registry()))?,
        reference: source,
    };
    let to = Endpoint {
        reference: destination_text
            .parse::<Reference>()
            .map_err(|e| anyhow!("{destination_text}: {e}"))?,
        auth: RegistryAuth::Basic(user, password),
    };
    let client = image::client(vec![]);
    let mut copied =
        image::copy_with_file(&client, &from, &to, &RDS_CA_FILE, image::TASK_PLATFORM).await;
    // A stored login that the source refuses (an expired `docker login
    // public.ecr.aws` lasts 12 hours) would fail a pull that anonymous
    // access allows: try once without it, and say so.
    if copied.as_ref().is_err_and(refused_login) && !matches!(from.auth, RegistryAuth::Anonymous) {
        tracing::warn!(
            registry = from.reference.registry(),
            "the stored registry login was refused; pulling anonymously"
        );
        from.auth = RegistryAuth::Anonymous;
        copied =
            image::copy_with_file(&client, &from, &to, &RDS_CA_FILE, image::TASK_PLATFORM).await;
    }
    let copied = copied
        .map_err(|err| explain_rate_limit(err, &from))
        .with_context(|| format!("copying {source_text} to {destination_text}"))?;
    if !registry::image_exists(cx, destination_text).await? {
        bail!("{destination_text} was pushed, but ECR does not list it: run `poolside image push` again");
    }
    Ok(Some(copied))
}

/// The source registry refused the login itself (not the destination's).
fn refused_login(err: &image::ImageError) -> bool {
    let text = format!("{err:#}").to_lowercase();
    // oci-client says "Not authorized" for a 401; registries' codes say UNAUTHORIZED.
    text.contains("unauthorized") || text.contains("not authorized")
}

/// A registry's "too many requests" (HTTP 429, `toomanyrequests`) said in
/// full: Docker Hub counts anonymous pulls per address (10 an hour), so a
/// retry at once fails the same way.
fn explain_rate_limit(err: image::ImageError, from: &Endpoint) -> anyhow::Error {
    let text = format!("{err:#}").to_lowercase();
    // The code or the status text, not a bare "429": digests contain it.
    if !(text.contains("toomanyrequests") || text.contains("too many requests")) {
        return err.into();
    }
    let login = match from.auth {
        RegistryAuth::Anonymous => "it was pulled anonymously, and anonymous pulls are limited (Docker Hub: 10 an hour per address). Log in (`docker login`: poolside reads ~/.docker/config.json, $DOCKER_CONFIG or $REGISTRY_AUTH_FILE, and credential helpers), ",
        _ => "the login poolside found was used; ",
    };
    anyhow!(
        "{} refused the pull with 429 too many requests: {login}wait for the limit to reset, or set api.image_source to a mirror without that limit. Nothing was pushed ({err})",
        from.reference.registry()
    )
}

/// The repository's URI; creates the repository as deploy would (same spec,
/// same tags) when it does not exist yet, so the image can go first.
async fn ensure_repository(session: &Session) -> anyhow::Result<String> {
    let id = ResourceId::new(Kind::Repository, "postgrest");
    let desired = session
        .desired
        .iter()
        .find(|d| d.id == id)
        .expect("the blueprint always has the repository");
    let Spec::Repository(spec) = &desired.spec else {
        unreachable!("repository/postgrest is a repository")
    };
    let found = registry::discover(&session.cx, &spec.name).await?;
    if found.is_empty() {
        resources::create(
            &session.cx,
            &id,
            &desired.spec,
            &resources::Waits::new(&crate::resources::Unwatched),
        )
        .await?;
    } else {
        session.cx.remember(&found);
    }
    session
        .cx
        .attribute(&id, "uri")
        .ok_or_else(|| anyhow!("ECR repository {} reports no URI", spec.name))
}

fn report(run: &RunOptions, destination: &str, copied: Option<&image::Copied>) {
    match (run.output, copied) {
        (Format::Json, copied) => output::json_line(
            "image",
            serde_json::json!({ "destination": destination, "copied": copied }),
        ),
        (Format::Human, None) => {
            println!("{destination} is already in the repository: nothing to copy.")
        }
        (Format::Human, Some(c)) => println!(
            "Copied {destination} ({}): {}, {}, {:.1} MB.",
            c.digest,
            output::count(c.manifests, "manifest", "manifests"),
            output::count(c.blobs, "blob", "blobs"),
            c.bytes as f64 / 1e6
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::{in_vpc, RDS_CA_FILE};

    #[test]
    fn the_images_carry_the_bundle_where_the_task_definitions_look() {
        assert_eq!(format!("/{}", RDS_CA_FILE.path), in_vpc::CA_FILE);
        let api = include_str!("../../templates/task-definition.json.j2");
        assert!(api.contains(&format!("\"PGSSLROOTCERT\": \"{}\"", in_vpc::CA_FILE)));
    }
}
