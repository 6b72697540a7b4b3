//! Copies a container image from one registry to another over the registry
//! API (no Docker engine), adding one layer on the way: PostgREST's published
//! image, with the RDS certificate authorities its tasks verify the database
//! with. Every platform of an image index is derived; the source's layers are
//! copied as they are, and the result depends only on the source and the
//! added file, so copying again gives the same digest.

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

const MANIFEST_TYPES: [&str; 4] = [
    OCI_IMAGE_INDEX_MEDIA_TYPE,
    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE,
];

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{registry}: {source}")]
    Registry {
        registry: String,
        #[source]
        source: oci_client::errors::OciDistributionError,
    },
    #[error("{reference}: the manifest is not JSON an OCI or Docker registry serves: {detail}")]
    Manifest { reference: String, detail: String },
    #[error("{reference}: pushed {pushed}, but the source's digest is {expected}")]
    DigestChanged {
        reference: String,
        expected: String,
        pushed: String,
    },
}

/// One side of a copy: a registry reference and how to log in to it.
pub struct Endpoint {
    pub reference: Reference,
    pub auth: RegistryAuth,
}

#[derive(Debug, Default, Serialize)]
pub struct Copied {
    /// The digest of the top manifest (the index, for a multi-platform image).
    pub digest: String,
    pub manifests: usize,
    pub blobs: usize,
    pub bytes: u64,
}

/// A registry client. `plain_http`: registries reached over plain HTTP
/// (`host:port`), for a local registry; everything else is HTTPS.
pub fn client(plain_http: Vec<String>) -> Client {
    Client::new(ClientConfig {
        protocol: if plain_http.is_empty() {
            ClientProtocol::Https
        } else {
            ClientProtocol::HttpsExcept(plain_http)
        },
        ..ClientConfig::default()
    })
}

/// A file laid on top of an image, as one more layer.
pub struct AddedFile {
    /// Inside the image, without the leading `/`.
    pub path: &'static str,
    pub contents: &'static [u8],
}

/// The platform the tasks run on: Fargate's default, since the task
/// definitions name no `runtimePlatform`.
pub const TASK_PLATFORM: Platform = Platform {
    os: "linux",
    architecture: "amd64",
};

#[derive(Clone, Copy, Debug)]
pub struct Platform {
    pub os: &'static str,
    pub architecture: &'static str,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)
    }
}

/// Copies `from` to `to` with one more layer holding `file`, for the one
/// `platform` the tasks run: a multi-platform source gives a single-platform
/// image. Only that platform is pulled, so a copy from Docker Hub counts as
/// one pull against its rate limit, not one per platform, and the
/// repository holds no untagged child manifests for a lifecycle rule to
/// expire. The new layer, config and manifest get digests that depend only
/// on the source and the file, so a second copy gives the same digest.
pub async fn copy_with_file(
    client: &Client,
    from: &Endpoint,
    to: &Endpoint,
    file: &AddedFile,
    platform: Platform,
) -> Result<Copied, ImageError> {
    client
        .auth(&to.reference, &to.auth, RegistryOperation::Push)
        .await
        .map_err(registry_error(&to.reference))?;
    let (raw, _) = client
        .pull_manifest_raw(&from.reference, &from.auth, &MANIFEST_TYPES)
        .await
        .map_err(registry_error(&from.reference))?;
    let layer = Layer::of(file);
    let mut copied = Copied::default();
    let document = parse(&from.reference, &raw)?;
    let (top, top_document) = match document.get("manifests").and_then(Value::as_array) {
        Some(children) => {
            let matches = |child: &&Value| {
                child["platform"]["os"].as_str() == Some(platform.os)
                    && child["platform"]["architecture"].as_str() == Some(platform.architecture)
            };
            let Some(child) = children.iter().find(matches) else {
                let offered: Vec<String> = children
                    .iter()
                    .filter_map(|c| {
                        Some(format!(
                            "{}/{}",
                            c["platform"]["os"].as_str()?,
                            c["platform"]["architecture"].as_str()?
                        ))
                    })
                    .collect();
                return Err(ImageError::Manifest {
                    reference: from.reference.whole(),
                    detail: format!(
                        "it offers no {platform} image, which the tasks run (it offers {})",
                        offered.join(", ")
                    ),
                });
            };
            let digest = child["digest"].as_str().unwrap_or_default();
            let (source, _, child_document) = pull_child(client, from, digest).await?;
            derive_manifest(client, &source, to, &child_document, &layer, &mut copied).await?
        }
        None => derive_manifest(client, from, to, &document, &layer, &mut copied).await?,
    };
    copied.digest = sha256(&top);
    push_manifest(client, &to.reference, top, &top_document).await?;
    copied.manifests += 1;
    Ok(copied)
}

/// Copies an image as it is (every platform, config and layer, then the
/// manifests' own bytes), so its digest is the same in the destination:
/// what a release promotion between two repositories needs.
pub async fn copy(client: &Client, from: &Endpoint, to: &Endpoint) -> Result<Copied, ImageError> {
    client
        .auth(&to.reference, &to.auth, RegistryOperation::Push)
        .await
        .map_err(registry_error(&to.reference))?;
    let (raw, _) = client
        .pull_manifest_raw(&from.reference, &from.auth, &MANIFEST_TYPES)
        .await
        .map_err(registry_error(&from.reference))?;
    let document = parse(&from.reference, &raw)?;
    let mut copied = Copied::default();
    let children: Vec<String> = document["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|child| child["digest"].as_str().map(str::to_string))
        .collect();
    for digest in &children {
        let (source, child_raw, child) = pull_child(client, from, digest).await?;
        copy_blobs(client, &source, to, &child, &mut copied).await?;
        push_manifest(client, &at(&to.reference, digest), child_raw, &child).await?;
        copied.manifests += 1;
    }
    if children.is_empty() {
        copy_blobs(client, from, to, &document, &mut copied).await?;
    }
    copied.digest = sha256(&raw);
    push_manifest(client, &to.reference, raw, &document).await?;
    copied.manifests += 1;
    Ok(copied)
}

/// One platform's manifest of an index: where it is, its bytes, its JSON.
async fn pull_child(
    client: &Client,
    from: &Endpoint,
    digest: &str,
) -> Result<(Endpoint, Vec<u8>, Value), ImageError> {
    let source = Endpoint {
        reference: at(&from.reference, digest),
        auth: from.auth.clone(),
    };
    let (raw, _) = client
        .pull_manifest_raw(&source.reference, &from.auth, &MANIFEST_TYPES)
        .await
        .map_err(registry_error(&from.reference))?;
    let document = parse(&source.reference, &raw)?;
    Ok((source, raw, document))
}

/// An image manifest's config and layers, as they are.
async fn copy_blobs(
    client: &Client,
    from: &Endpoint,
    to: &Endpoint,
    manifest: &Value,
    copied: &mut Copied,
) -> Result<(), ImageError> {
    if let Some(config) = manifest["config"]["digest"].as_str() {
        copy_blob(client, from, to, config, copied).await?;
    }
    copy_layers(client, from, to, manifest, copied).await
}

/// One more layer: a gzipped tar of one file, byte for byte the same every time.
struct Layer {
    /// The uncompressed tar's digest: the config's `rootfs.diff_ids` entry.
    diff_id: String,
    gzipped: Vec<u8>,
}

impl Layer {
    fn of(file: &AddedFile) -> Layer {
        let mut tar = tar::Builder::new(Vec::new());
        let mut directories = Vec::new();
        let mut path = std::path::PathBuf::new();
        for part in std::path::Path::new(file.path)
            .parent()
            .into_iter()
            .flat_map(|p| p.iter())
        {
            path.push(part);
            directories.push(path.clone());
        }
        let header = |kind: tar::EntryType, mode: u32, size: u64| {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(kind);
            header.set_mode(mode);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header.set_size(size);
            header
        };
        for directory in directories {
            let mut h = header(tar::EntryType::Directory, 0o755, 0);
            tar.append_data(&mut h, &directory, std::io::empty())
                .expect("writing to memory");
        }
        let mut h = header(tar::EntryType::Regular, 0o644, file.contents.len() as u64);
        tar.append_data(&mut h, file.path, file.contents)
            .expect("writing to memory");
        let uncompressed = tar.into_inner().expect("writing to memory");
        let mut gzip = flate2::GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gzip, &uncompressed).expect("writing to memory");
        Layer {
            diff_id: sha256(&uncompressed),
            gzipped: gzip.finish().expect("writing to memory"),
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// One platform's manifest with the layer added: its layers copied, the new
/// layer and the new config pushed. Returns the new manifest's bytes.
async fn derive_manifest(
    client: &Client,
    from: &Endpoint,
    to: &Endpoint,
    manifest: &Value,
    layer: &Layer,
    copied: &mut Copied,
) -> Result<(Vec<u8>, Value), ImageError> {
    copy_layers(client, from, to, manifest, copied).await?;
    let config_digest = manifest["config"]["digest"].as_str().unwrap_or_default();
    let mut config_bytes = Vec::new();
    client
        .pull_blob(&from.reference, config_digest, &mut config_bytes)
        .await
        .map_err(registry_error(&from.reference))?;
    let mut config = parse(&from.reference, &config_bytes)?;
    match config["rootfs"]["diff_ids"].as_array_mut() {
        Some(diff_ids) => diff_ids.push(Value::String(layer.diff_id.clone())),
        None => {
            return Err(ImageError::Manifest {
                reference: from.reference.whole(),
                detail: "its config has no rootfs.diff_ids".into(),
            })
        }
    }
    if let Some(history) = config["history"].as_array_mut() {
        history
            .push(serde_json::json!({ "created_by": "poolside: the RDS certificate authorities" }));
    }
    let config_bytes = serde_json::to_vec(&config).expect("JSON serializes");
    let config_digest = sha256(&config_bytes);
    let layer_digest = sha256(&layer.gzipped);
    for (blob, digest) in [
        (&config_bytes, &config_digest),
        (&layer.gzipped, &layer_digest),
    ] {
        client
            .push_blob(&to.reference, blob, digest)
            .await
            .map_err(registry_error(&to.reference))?;
        copied.blobs += 1;
        copied.bytes += blob.len() as u64;
    }
    let docker = manifest["mediaType"].as_str() == Some(IMAGE_MANIFEST_MEDIA_TYPE);
    let layer_type = if docker {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    } else {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    };
    let mut derived = manifest.clone();
    derived["config"]["digest"] = Value::String(config_digest);
    derived["config"]["size"] = Value::from(config_bytes.len());
    derived["layers"]
        .as_array_mut()
        .expect("an image manifest lists layers")
        .push(serde_json::json!({
            "mediaType": layer_type,
            "digest": layer_digest,
            "size": layer.gzipped.len(),
        }));
    let bytes = serde_json::to_vec(&derived).expect("JSON serializes");
    Ok((bytes, derived))
}

/// Wraps a registry client error with the registry it came from.
fn registry_error(
    reference: &Reference,
) -> impl FnOnce(oci_client::errors::OciDistributionError) -> ImageError {
    let registry = reference.registry().to_string();
    move |source| ImageError::Registry { registry, source }
}

/// The same repository at another digest.
fn at(reference: &Reference, digest: &str) -> Reference {
    Reference::with_digest(
        reference.registry().to_string(),
        reference.repository().to_string(),
        digest.to_string(),
    )
}

fn parse(reference: &Reference, raw: &[u8]) -> Result<Value, ImageError> {
    serde_json::from_slice(raw).map_err(|e| ImageError::Manifest {
        reference: reference.whole(),
        detail: e.to_string(),
    })
}

/// The layers of one image manifest, as they are (its config is replaced).
async fn copy_layers(
    client: &Client,
    from: &Endpoint,
    to: &Endpoint,
    manifest: &Value,
    copied: &mut Copied,
) -> Result<(), ImageError> {
    let digests = manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["digest"].as_str());
    for digest in digests {
        copy_blob(client, from, to, digest, copied).await?;
    }
    Ok(())
}

/// One blob, pulled whole and pushed under the same digest.
async fn copy_blob(
    client: &Client,
    from: &Endpoint,
    to: &Endpoint,
    digest: &str,
    copied: &mut Copied,
) -> Result<(), ImageError> {
    let mut blob = Vec::new();
    client
        .pull_blob(&from.reference, digest, &mut blob)
        .await
        .map_err(registry_error(&from.reference))?;
    client
        .push_blob(&to.reference, &blob, digest)
        .await
        .map_err(registry_error(&to.reference))?;
    copied.blobs += 1;
    copied.bytes += blob.len() as u64;
    Ok(())
}

/// Pushes the manifest's own bytes, so its digest stays what it was.
async fn push_manifest(
    client: &Client,
    to: &Reference,
    raw: Vec<u8>,
    document: &Value,
) -> Result<(), ImageError> {
    // An OCI manifest may leave its media type out: it is an index if it lists manifests.
    let media_type =
        document["mediaType"]
            .as_str()
            .unwrap_or(if document.get("manifests").is_some() {
                OCI_IMAGE_INDEX_MEDIA_TYPE
            } else {
                OCI_IMAGE_MEDIA_TYPE
            });
    let expected = format!("sha256:{:x}", Sha256::digest(&raw));
    let content_type = media_type.parse().map_err(|_| ImageError::Manifest {
        reference: to.whole(),
        detail: format!("media type {media_type:?}"),
    })?;
    let location = client
        .push_manifest_raw(to, raw, content_type)
        .await
        .map_err(registry_error(to))?;
    // Registries answer with the manifest's location, which names its digest.
    if let Some(pushed) = location
        .rsplit('/')
        .next()
        .filter(|l| l.starts_with("sha256:"))
    {
        if pushed != expected {
            return Err(ImageError::DigestChanged {
                reference: to.whole(),
                expected,
                pushed: pushed.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command};

    /// A real registry (Debian's docker-registry, the CNCF distribution
    /// server) on a free local port, with its storage in a temporary directory.
    struct LocalRegistry {
        child: Child,
        address: String,
        _storage: tempfile::TempDir,
    }

    impl LocalRegistry {
        fn start() -> LocalRegistry {
            let storage = tempfile::tempdir().unwrap();
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let address = format!("127.0.0.1:{port}");
            let config = storage.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n",
                    storage.path().join("data").display()
                ),
            )
            .unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("docker-registry runs (./localstack/install.sh installs it)");
            for _ in 0..100 {
                if std::net::TcpStream::connect(&address).is_ok() {
                    return LocalRegistry {
                        child,
                        address,
                        _storage: storage,
                    };
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("docker-registry did not listen on {address}");
        }

        fn reference(&self, repository: &str, tag: &str) -> Reference {
            Reference::with_tag(self.address.clone(), repository.into(), tag.into())
        }
    }

    impl Drop for LocalRegistry {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn digest(bytes: &[u8]) -> String {
        format!("sha256:{:x}", Sha256::digest(bytes))
    }

    /// Pushes a two-platform image (an index over two manifests, each with a
    /// config and a layer) and returns the index's digest.
    async fn seed(client: &Client, at: &Reference) -> (String, Vec<u8>) {
        let mut children = Vec::new();
        let mut first_layer = Vec::new();
        for arch in ["amd64", "arm64"] {
            let layer = format!("the {arch} layer of a test image").into_bytes();
            let config = serde_json::json!({
                "architecture": arch, "os": "linux",
                "rootfs": { "type": "layers", "diff_ids": [digest(&layer)] }
            })
            .to_string()
            .into_bytes();
            client.push_blob(at, &layer, &digest(&layer)).await.unwrap();
            client
                .push_blob(at, &config, &digest(&config))
                .await
                .unwrap();
            // Key order as a registry would not write it: bytes, not JSON, must survive.
            let manifest = format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_IMAGE_MEDIA_TYPE}","layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}],"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}}}}"#,
                digest(&layer),
                layer.len(),
                digest(&config),
                config.len()
            )
            .into_bytes();
            let manifest_digest = digest(&manifest);
            client
                .push_manifest_raw(
                    &at_digest(at, &manifest_digest),
                    manifest.clone(),
                    OCI_IMAGE_MEDIA_TYPE.parse().unwrap(),
                )
                .await
                .unwrap();
            children.push(format!(
                r#"{{"mediaType":"{OCI_IMAGE_MEDIA_TYPE}","digest":"{manifest_digest}","size":{},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#,
                manifest.len()
            ));
            if first_layer.is_empty() {
                first_layer = layer;
            }
        }
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_IMAGE_INDEX_MEDIA_TYPE}","manifests":[{}]}}"#,
            children.join(",")
        )
        .into_bytes();
        client
            .push_manifest_raw(
                at,
                index.clone(),
                OCI_IMAGE_INDEX_MEDIA_TYPE.parse().unwrap(),
            )
            .await
            .unwrap();
        (digest(&index), first_layer)
    }

    fn at_digest(reference: &Reference, digest: &str) -> Reference {
        at(reference, digest)
    }

    /// A release promotion copies an image between two repositories as it
    /// is: the same digest, every platform, every blob, under the new tag.
    #[tokio::test]
    async fn a_plain_copy_keeps_the_digest_and_brings_every_blob() {
        let registry = LocalRegistry::start();
        let client = client(vec![registry.address.clone()]);
        let staging = registry.reference("poolside-staging/postgrest", "v12.0.2-rds-ca");
        client
            .auth(&staging, &RegistryAuth::Anonymous, RegistryOperation::Push)
            .await
            .unwrap();
        let (index_digest, layer) = seed(&client, &staging).await;
        let from = Endpoint {
            reference: at(&staging, &index_digest),
            auth: RegistryAuth::Anonymous,
        };
        let to = Endpoint {
            reference: registry.reference("poolside-prod/postgrest", "v12.0.2-rds-ca"),
            auth: RegistryAuth::Anonymous,
        };
        let copied = copy(&client, &from, &to).await.unwrap();
        assert_eq!(copied.digest, index_digest);
        assert_eq!((copied.manifests, copied.blobs), (3, 4));
        let (_, served) = client
            .pull_manifest_raw(&to.reference, &RegistryAuth::Anonymous, &MANIFEST_TYPES)
            .await
            .unwrap();
        assert_eq!(served, index_digest, "the tag in the new repository");
        let mut pulled = Vec::new();
        client
            .pull_blob(&to.reference, digest(&layer).as_str(), &mut pulled)
            .await
            .unwrap();
        assert_eq!(pulled, layer, "the layer is in the new repository");
    }

    #[tokio::test]
    async fn only_the_tasks_platform_is_copied_with_the_added_file_as_one_more_layer() {
        let source = LocalRegistry::start();
        let destination = LocalRegistry::start();
        let client = client(vec![source.address.clone(), destination.address.clone()]);
        let published = source.reference("postgrest/postgrest", "v12.0.2");
        client
            .auth(
                &published,
                &RegistryAuth::Anonymous,
                RegistryOperation::Push,
            )
            .await
            .unwrap();
        let (index_digest, layer) = seed(&client, &published).await;
        let file = AddedFile {
            path: "etc/poolside/rds-ca-bundle.pem",
            contents: b"-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n",
        };
        let from = Endpoint {
            reference: at(&published, &index_digest),
            auth: RegistryAuth::Anonymous,
        };
        let to = Endpoint {
            reference: destination.reference("poolside-pilot/postgrest", "v12.0.2-rds-ca"),
            auth: RegistryAuth::Anonymous,
        };
        let copied = copy_with_file(&client, &from, &to, &file, TASK_PLATFORM)
            .await
            .unwrap();
        assert_eq!(copied.manifests, 1, "the tasks' platform alone, no index");

        let (raw, served) = client
            .pull_manifest_raw(&to.reference, &RegistryAuth::Anonymous, &MANIFEST_TYPES)
            .await
            .unwrap();
        assert_eq!(served, copied.digest);
        let child = to.reference.clone();
        {
            let manifest: Value = serde_json::from_slice(&raw).unwrap();
            let layers = manifest["layers"].as_array().unwrap();
            assert_eq!(layers.len(), 2, "the source's layer and the added one");
            // The added layer holds the file, at its path.
            let mut gzipped = Vec::new();
            client
                .pull_blob(&child, layers[1]["digest"].as_str().unwrap(), &mut gzipped)
                .await
                .unwrap();
            let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&gzipped[..]));
            let mut found = None;
            for entry in archive.entries().unwrap() {
                let mut entry = entry.unwrap();
                if entry.path().unwrap().to_str() == Some(file.path) {
                    let mut text = Vec::new();
                    std::io::Read::read_to_end(&mut entry, &mut text).unwrap();
                    found = Some(text);
                }
            }
            assert_eq!(found.as_deref(), Some(file.contents));
            // The config names the new layer among its diff_ids.
            let mut config = Vec::new();
            client
                .pull_blob(
                    &child,
                    manifest["config"]["digest"].as_str().unwrap(),
                    &mut config,
                )
                .await
                .unwrap();
            let config: Value = serde_json::from_slice(&config).unwrap();
            assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
        }
        // The amd64 layer was copied as it was; the arm64 one was not.
        let mut pulled = Vec::new();
        client
            .pull_blob(&child, digest(&layer).as_str(), &mut pulled)
            .await
            .unwrap();
        assert_eq!(pulled, layer);
        let arm64 = b"the arm64 layer of a test image".to_vec();
        let mut missing = Vec::new();
        assert!(
            client
                .pull_blob(&child, digest(&arm64).as_str(), &mut missing)
                .await
                .is_err(),
            "the other platform's layer was copied"
        );

        // A platform the image does not offer is refused by name.
        let arm_only = Platform {
            os: "linux",
            architecture: "s390x",
        };
        let err = copy_with_file(&client, &from, &to, &file, arm_only)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no linux/s390x image") && err.contains("linux/arm64"),
            "{err}"
        );

        // Copying again gives the same digest: nothing in it depends on time.
        let again = copy_with_file(&client, &from, &to, &file, TASK_PLATFORM)
            .await
            .unwrap();
        assert_eq!(again.digest, copied.digest);
    }
}
