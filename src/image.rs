//! Copies a container image from one registry to another by its manifests
//! and blobs, as `skopeo copy --all --preserve-digests` does: no Docker
//! engine, and the digest is unchanged (the manifests are pushed byte for
//! byte), so a task definition pinned to `@sha256:...` runs exactly the image
//! that was pinned.
//!
//! An image index (several platforms, attestations) is copied whole: every
//! manifest it lists, then the index itself.

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

/// Copies `from` to `to`; `to`'s tag (or digest) names the copy.
pub async fn copy(client: &Client, from: &Endpoint, to: &Endpoint) -> Result<Copied, ImageError> {
    let registry_error = |reference: &Reference| {
        let registry = reference.registry().to_string();
        move |source| ImageError::Registry { registry, source }
    };
    client
        .auth(&to.reference, &to.auth, RegistryOperation::Push)
        .await
        .map_err(registry_error(&to.reference))?;
    let (raw, digest) = client
        .pull_manifest_raw(&from.reference, &from.auth, &MANIFEST_TYPES)
        .await
        .map_err(registry_error(&from.reference))?;
    let mut copied = Copied {
        digest: digest.clone(),
        ..Copied::default()
    };
    let document = parse(&from.reference, &raw)?;
    if let Some(children) = document.get("manifests").and_then(Value::as_array) {
        for child in children {
            let child_digest = child["digest"].as_str().unwrap_or_default().to_string();
            let source = Endpoint {
                reference: at(&from.reference, &child_digest),
                auth: from.auth.clone(),
            };
            let (child_raw, _) = client
                .pull_manifest_raw(&source.reference, &from.auth, &MANIFEST_TYPES)
                .await
                .map_err(registry_error(&from.reference))?;
            let child_document = parse(&source.reference, &child_raw)?;
            copy_blobs(client, &source, to, &child_document, &mut copied).await?;
            push_manifest(
                client,
                &at(&to.reference, &child_digest),
                child_raw,
                &child_document,
            )
            .await?;
            copied.manifests += 1;
        }
    } else {
        copy_blobs(client, from, to, &document, &mut copied).await?;
    }
    push_manifest(client, &to.reference, raw, &document).await?;
    copied.manifests += 1;
    Ok(copied)
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

/// The config and the layers of one image manifest.
async fn copy_blobs(
    client: &Client,
    from: &Endpoint,
    to: &Endpoint,
    manifest: &Value,
    copied: &mut Copied,
) -> Result<(), ImageError> {
    let digests = manifest
        .get("config")
        .into_iter()
        .chain(manifest["layers"].as_array().into_iter().flatten())
        .filter_map(|d| d["digest"].as_str());
    for digest in digests {
        let mut blob = Vec::new();
        client
            .pull_blob(&from.reference, digest, &mut blob)
            .await
            .map_err(|source| ImageError::Registry {
                registry: from.reference.registry().to_string(),
                source,
            })?;
        client
            .push_blob(&to.reference, &blob, digest)
            .await
            .map_err(|source| ImageError::Registry {
                registry: to.reference.registry().to_string(),
                source,
            })?;
        copied.blobs += 1;
        copied.bytes += blob.len() as u64;
    }
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
        .map_err(|source| ImageError::Registry {
            registry: to.registry().to_string(),
            source,
        })?;
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

    #[tokio::test]
    async fn a_multi_platform_image_is_copied_with_its_digest_unchanged() {
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

        let from = Endpoint {
            reference: at(&published, &index_digest),
            auth: RegistryAuth::Anonymous,
        };
        let to = Endpoint {
            reference: destination.reference("poolside-pilot/postgrest", "v12.0.2"),
            auth: RegistryAuth::Anonymous,
        };
        let copied = copy(&client, &from, &to).await.unwrap();
        assert_eq!(copied.digest, index_digest);
        assert_eq!((copied.manifests, copied.blobs), (3, 4));

        // The destination serves the same bytes under the tag, and the layers.
        let (raw, served_digest) = client
            .pull_manifest_raw(&to.reference, &RegistryAuth::Anonymous, &MANIFEST_TYPES)
            .await
            .unwrap();
        assert_eq!(served_digest, index_digest);
        assert_eq!(digest(&raw), index_digest);
        let mut pulled = Vec::new();
        client
            .pull_blob(&to.reference, digest(&layer).as_str(), &mut pulled)
            .await
            .unwrap();
        assert_eq!(pulled, layer);

        // Copying again changes nothing and gives the same digest.
        let again = copy(&client, &from, &to).await.unwrap();
        assert_eq!(again.digest, index_digest);
    }
}
