//! The ECR repository for the PostgREST image: immutable tags, scan on push,
//! and a lifecycle policy keeping the last N images. Found by its name.

pub mod spec;

use super::aws_error::{error_code, AwsResultExt};
use super::context::Context;
use super::tags::{tag_changes, user_visible_tags};
use crate::model::*;
use crate::resources::resource::Resource;
use crate::resources::spec::*;
use crate::resources::waits::Waits;
use anyhow::{anyhow, bail};
use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability, Repository, Tag};
use base64::Engine as _;
use std::collections::BTreeMap;

pub async fn discover(cx: &Context, name: &str) -> anyhow::Result<Vec<Live>> {
    let ecr = &cx.clients.ecr;
    let found = match ecr
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
    {
        Ok(out) => out.repositories().first().cloned(),
        Err(err) if error_code(&err) == Some("RepositoryNotFoundException") => None,
        Err(err) => return Err(err).aws("DescribeRepositories"),
    };
    let Some(repository) = found else {
        return Ok(vec![]);
    };
    Ok(vec![observe(cx, &repository).await?])
}

async fn observe(cx: &Context, repository: &Repository) -> anyhow::Result<Live> {
    let ecr = &cx.clients.ecr;
    let name = repository.repository_name().unwrap_or_default();
    let arn = repository
        .repository_arn()
        .ok_or_else(|| anyhow!("repository {name} has no ARN"))?;
    let (tags, lifecycle) = tokio::try_join!(
        async {
            ecr.list_tags_for_resource()
                .resource_arn(arn)
                .send()
                .await
                .aws("ListTagsForResource")
        },
        async {
            match ecr
                .get_lifecycle_policy()
                .repository_name(name)
                .send()
                .await
            {
                Ok(out) => Ok(out.lifecycle_policy_text().map(str::to_string)),
                Err(err) if error_code(&err) == Some("LifecyclePolicyNotFoundException") => {
                    Ok(None)
                }
                Err(err) => Err(err).aws("GetLifecyclePolicy"),
            }
        },
    )?;
    let tags = user_visible_tags(
        tags.tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string())),
    );
    if let Some(owner) = tags.get(TAG_ENV).filter(|owner| **owner != cx.environment) {
        bail!("the ECR repository {name:?} belongs to the poolside environment {owner:?}; set registry.repository_name");
    }
    let lifecycle_policy = match lifecycle {
        Some(text) => Some(
            serde_json::from_str(&text)
                .map_err(|e| anyhow!("lifecycle policy of {name} is not JSON: {e}"))?,
        ),
        None => None,
    };
    Ok(Live {
        id: ResourceId::new(Kind::Repository, "postgrest"),
        physical_id: arn.to_string(),
        spec: Spec::Repository(RepositorySpec {
            name: name.to_string(),
            scan_on_push: repository
                .image_scanning_configuration()
                .is_some_and(|c| c.scan_on_push()),
            immutable_tags: repository.image_tag_mutability()
                == Some(&ImageTagMutability::Immutable),
            lifecycle_policy,
            tags,
        }),
        attributes: BTreeMap::from([(
            "uri".to_string(),
            repository.repository_uri().unwrap_or_default().to_string(),
        )]),
    })
}

fn ecr_tags(tags: &Tags) -> anyhow::Result<Vec<Tag>> {
    Ok(tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()?)
}

pub async fn create(
    cx: &Context,
    id: &ResourceId,
    spec: &RepositorySpec,
) -> anyhow::Result<String> {
    let ecr = &cx.clients.ecr;
    let created = ecr
        .create_repository()
        .repository_name(&spec.name)
        .image_tag_mutability(if spec.immutable_tags {
            ImageTagMutability::Immutable
        } else {
            ImageTagMutability::Mutable
        })
        .image_scanning_configuration(
            ImageScanningConfiguration::builder()
                .scan_on_push(spec.scan_on_push)
                .build(),
        )
        .set_tags(Some(ecr_tags(&spec.tags)?))
        .send()
        .await;
    let live = match created {
        Ok(out) => {
            let repository = out
                .repository()
                .ok_or_else(|| anyhow!("CreateRepository returned no repository"))?;
            Live {
                id: id.clone(),
                physical_id: repository.repository_arn().unwrap_or_default().to_string(),
                spec: Spec::Repository(RepositorySpec {
                    lifecycle_policy: None,
                    ..spec.clone()
                }),
                attributes: BTreeMap::from([(
                    "uri".into(),
                    repository.repository_uri().unwrap_or_default().to_string(),
                )]),
            }
        }
        // Created by a run that did not finish: adopt it and converge.
        Err(err) if error_code(&err) == Some("RepositoryAlreadyExistsException") => {
            discover(cx, &spec.name)
                .await?
                .pop()
                .ok_or_else(|| anyhow!("repository {} exists but cannot be described", spec.name))?
        }
        Err(err) => return Err(err).aws("CreateRepository"),
    };
    let Spec::Repository(current) = &live.spec else {
        unreachable!()
    };
    update(cx, &live.physical_id, current, spec).await?;
    if let Some(uri) = live.attributes.get("uri") {
        cx.record_attribute(id, "uri", uri);
    }
    Ok(live.physical_id)
}

pub async fn update(
    cx: &Context,
    arn: &str,
    old: &RepositorySpec,
    new: &RepositorySpec,
) -> anyhow::Result<()> {
    let ecr = &cx.clients.ecr;
    let name = new.name.as_str();
    if old.scan_on_push != new.scan_on_push {
        ecr.put_image_scanning_configuration()
            .repository_name(name)
            .image_scanning_configuration(
                ImageScanningConfiguration::builder()
                    .scan_on_push(new.scan_on_push)
                    .build(),
            )
            .send()
            .await
            .aws("PutImageScanningConfiguration")?;
    }
    if old.immutable_tags != new.immutable_tags {
        let mutability = if new.immutable_tags {
            ImageTagMutability::Immutable
        } else {
            ImageTagMutability::Mutable
        };
        ecr.put_image_tag_mutability()
            .repository_name(name)
            .image_tag_mutability(mutability)
            .send()
            .await
            .aws("PutImageTagMutability")?;
    }
    if old.lifecycle_policy != new.lifecycle_policy {
        match &new.lifecycle_policy {
            Some(policy) => {
                ecr.put_lifecycle_policy()
                    .repository_name(name)
                    .lifecycle_policy_text(policy.to_string())
                    .send()
                    .await
                    .aws("PutLifecyclePolicy")?;
            }
            None => {
                ecr.delete_lifecycle_policy()
                    .repository_name(name)
                    .send()
                    .await
                    .aws("DeleteLifecyclePolicy")?;
            }
        }
    }
    let (changed, removed) = tag_changes(&old.tags, &new.tags);
    if !changed.is_empty() {
        ecr.tag_resource()
            .resource_arn(arn)
            .set_tags(Some(ecr_tags(&changed)?))
            .send()
            .await
            .aws("TagResource")?;
    }
    if !removed.is_empty() {
        ecr.untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(removed))
            .send()
            .await
            .aws("UntagResource")?;
    }
    Ok(())
}

/// Deletes an empty repository; one holding images is refused by AWS, and we
/// do not force it: images are releases.
pub async fn delete(cx: &Context, name: &str) -> anyhow::Result<()> {
    match cx
        .clients
        .ecr
        .delete_repository()
        .repository_name(name)
        // With images only when the run may delete data (destroy --delete-data).
        .force(cx.deletion.delete_data)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if error_code(&err) == Some("RepositoryNotFoundException") => Ok(()),
        Err(err) if error_code(&err) == Some("RepositoryNotEmptyException") => {
            bail!("repository {name} still holds images; poolside does not delete releases unless told to: `poolside destroy --delete-data` deletes them with it")
        }
        Err(err) => Err(err).aws("DeleteRepository"),
    }
}

/// How many images the repository holds, counting up to `limit`.
pub async fn count_images(cx: &Context, name: &str, limit: i32) -> anyhow::Result<usize> {
    match cx
        .clients
        .ecr
        .list_images()
        .repository_name(name)
        .max_results(limit)
        .send()
        .await
    {
        Ok(out) => Ok(out.image_ids().len()),
        Err(err) if error_code(&err) == Some("RepositoryNotFoundException") => Ok(0),
        Err(err) => Err(err).aws("ListImages"),
    }
}

/// An image reference in ECR: `<account>.dkr.ecr.<region>.amazonaws.com/<repository>`
/// followed by `:<tag>` or `@sha256:<digest>`.
#[derive(Debug, PartialEq)]
pub struct EcrImage<'a> {
    pub registry_id: &'a str,
    pub repository: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

impl<'a> EcrImage<'a> {
    /// `None` for an image outside ECR (poolside does not check those).
    pub fn parse(image: &'a str) -> Option<EcrImage<'a>> {
        let (host, path) = image.split_once('/')?;
        let (registry_id, _) = host.split_once(".dkr.ecr.")?;
        let (repository, tag, digest) = match path.split_once('@') {
            Some((repository, digest)) => (repository, None, Some(digest)),
            None => match path.rsplit_once(':') {
                Some((repository, tag)) => (repository, Some(tag), None),
                None => (path, Some("latest"), None),
            },
        };
        Some(EcrImage {
            registry_id,
            repository,
            tag,
            digest,
        })
    }
}

/// Whether ECR lists `image` (by its tag or digest) in its repository.
pub async fn image_exists(cx: &Context, image: &str) -> anyhow::Result<bool> {
    Ok(describe_image(cx, image).await?.is_some())
}

/// The digest ECR lists for `image` (by its tag or digest); `None` when the
/// repository lacks it.
pub async fn image_digest(cx: &Context, image: &str) -> anyhow::Result<Option<String>> {
    Ok(describe_image(cx, image)
        .await?
        .and_then(|detail| detail.image_digest().map(str::to_string)))
}

/// What ECR lists for `image`: `None` when the repository (or it) is missing.
async fn describe_image(
    cx: &Context,
    image: &str,
) -> anyhow::Result<Option<aws_sdk_ecr::types::ImageDetail>> {
    let Some(ecr_image) = EcrImage::parse(image) else {
        anyhow::bail!("{image} is not an ECR image reference");
    };
    let id = aws_sdk_ecr::types::ImageIdentifier::builder()
        .set_image_tag(ecr_image.tag.map(str::to_string))
        .set_image_digest(ecr_image.digest.map(str::to_string))
        .build();
    match cx
        .clients
        .ecr
        .describe_images()
        .registry_id(ecr_image.registry_id)
        .repository_name(ecr_image.repository)
        .image_ids(id)
        .send()
        .await
    {
        Ok(out) => Ok(out.image_details().first().cloned()),
        Err(err)
            if matches!(
                error_code(&err),
                Some("ImageNotFoundException" | "RepositoryNotFoundException")
            ) =>
        {
            Ok(None)
        }
        Err(err) => Err(err).aws("DescribeImages"),
    }
}

/// Puts the manifest of `from` (at `digest`) into `to_repository` under
/// `tag`, through ECR's API (BatchGetImage, PutImage): the digest stays the
/// same. ECR refuses a manifest whose layers the repository lacks, so on AWS
/// the layers go first (`image::copy` over the registry API); the emulator's
/// ECR keeps manifests only, and this is the whole copy there.
pub async fn put_manifest(
    cx: &Context,
    from: &EcrImage<'_>,
    digest: &str,
    to_repository: &str,
    tag: &str,
) -> anyhow::Result<()> {
    let out = cx
        .clients
        .ecr
        .batch_get_image()
        .registry_id(from.registry_id)
        .repository_name(from.repository)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_digest(digest)
                .build(),
        )
        .send()
        .await
        .aws("BatchGetImage")?;
    let image = out
        .images()
        .first()
        .ok_or_else(|| anyhow!("ECR has no image {digest} in {}", from.repository))?;
    let manifest = image
        .image_manifest()
        .ok_or_else(|| anyhow!("ECR returned no manifest for {digest}"))?;
    let mut put = cx
        .clients
        .ecr
        .put_image()
        .repository_name(to_repository)
        .image_manifest(manifest)
        .image_tag(tag)
        .image_digest(digest);
    if let Some(media_type) = image.image_manifest_media_type() {
        put = put.image_manifest_media_type(media_type);
    }
    match put.send().await {
        Ok(_) => Ok(()),
        // The tag already names this manifest: nothing to do.
        Err(err) if error_code(&err) == Some("ImageAlreadyExistsException") => Ok(()),
        Err(err) => Err(err).aws("PutImage"),
    }
}

/// Fails, naming the command that fixes it, unless `image` is in its ECR
/// repository. DescribeImages is ECR's own answer: what a task would pull.
pub async fn ensure_image_exists(cx: &Context, image: &str) -> anyhow::Result<()> {
    let Some(ecr_image) = EcrImage::parse(image) else {
        return Ok(());
    };
    if image_exists(cx, image).await? {
        Ok(())
    } else {
        Err(missing_image(cx, image, &ecr_image))
    }
}

/// The error for an image the repository lacks, with the command that puts it there.
fn missing_image(cx: &Context, image: &str, ecr_image: &EcrImage<'_>) -> anyhow::Error {
    anyhow!(
        "the image {image} is not in ECR repository {repository}, so no task could start from it. \
         Copy the published images into it (with the RDS certificate authorities the tasks \
         verify the database with), then run deploy again:\n  poolside image push --env {environment}",
        repository = ecr_image.repository,
        environment = cx.environment,
    )
}

impl Resource for RepositorySpec {
    async fn create(
        &self,
        cx: &Context,
        id: &ResourceId,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        create(cx, id, self).await
    }

    async fn update(
        &self,
        cx: &Context,
        live: &Live,
        old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        update(cx, &live.physical_id, old, self).await
    }

    async fn delete(&self, cx: &Context, _live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        delete(cx, &self.name).await
    }
}

/// ECR's registry login: the user and password in GetAuthorizationToken's token.
pub async fn login(cx: &Context) -> anyhow::Result<(String, String)> {
    let out = cx
        .clients
        .ecr
        .get_authorization_token()
        .send()
        .await
        .aws("GetAuthorizationToken")?;
    let token = out
        .authorization_data()
        .first()
        .and_then(|d| d.authorization_token())
        .ok_or_else(|| anyhow!("GetAuthorizationToken returned no token"))?;
    registry_login(token)
}

fn registry_login(token: &str) -> anyhow::Result<(String, String)> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| anyhow!("ECR's authorization token is not base64"))?;
    let text =
        String::from_utf8(decoded).map_err(|_| anyhow!("ECR's authorization token is not text"))?;
    let (user, password) = text
        .split_once(':')
        .ok_or_else(|| anyhow!("ECR's authorization token is not user:password"))?;
    Ok((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::{registry_login, EcrImage};

    #[test]
    fn ecr_image_references_parse_by_tag_and_by_digest() {
        let by_tag = EcrImage::parse(
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/poolside-p/postgrest:v12.0.2",
        )
        .unwrap();
        assert_eq!(by_tag.registry_id, "123456789012");
        assert_eq!(by_tag.repository, "poolside-p/postgrest");
        assert_eq!(by_tag.tag, Some("v12.0.2"));
        let by_digest =
            EcrImage::parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com/postgrest@sha256:abc")
                .unwrap();
        assert_eq!(by_digest.digest, Some("sha256:abc"));
        assert_eq!(by_digest.tag, None);
        assert_eq!(EcrImage::parse("docker.io/postgrest/postgrest:v12"), None);
    }

    #[test]
    fn ecr_tokens_decode_to_the_registry_login() {
        // base64("AWS:secret-password"), as GetAuthorizationToken encodes it.
        let (user, password) = registry_login("QVdTOnNlY3JldC1wYXNzd29yZA==").unwrap();
        assert_eq!(
            (user.as_str(), password.as_str()),
            ("AWS", "secret-password")
        );
        assert!(registry_login("not base64!").is_err());
    }
}
