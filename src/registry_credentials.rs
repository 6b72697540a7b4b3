//! Credentials for the registries `image push` pulls from, found the way
//! container tools find them, so an operator who ran `docker login` (or
//! `podman login`) is logged in here too: an authenticated Docker Hub pull
//! is not held to the anonymous limit of 10 an hour per address.
//!
//! Looked up, first found wins: the auth file `REGISTRY_AUTH_FILE` names
//! (podman, skopeo), then `$DOCKER_CONFIG/config.json`, then
//! `~/.docker/config.json`. In the file: a credential helper for the
//! registry (`credHelpers`), the `auth` entry of `auths`, then the default
//! helper (`credsStore`). Nothing found is an anonymous pull. A secret is
//! never printed: errors name the file or helper, not what it holds.

use anyhow::{anyhow, Context as _};
use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use serde_json::Value;
use std::path::PathBuf;

/// The names Docker Hub goes by in auth files.
const DOCKER_HUB: [&str; 4] = [
    "https://index.docker.io/v1/",
    "index.docker.io",
    "docker.io",
    "registry-1.docker.io",
];

/// The login for `registry` (a host such as `docker.io` or `public.ecr.aws`).
pub fn for_registry(registry: &str) -> anyhow::Result<RegistryAuth> {
    for file in auth_files() {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let config: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", file.display()))?;
        if let Some(auth) = from_config(&config, registry, &file)? {
            return Ok(auth);
        }
    }
    Ok(RegistryAuth::Anonymous)
}

fn auth_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(file) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(file));
    }
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        files.push(PathBuf::from(dir).join("config.json"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        files.push(PathBuf::from(home).join(".docker/config.json"));
    }
    files
}

/// The names a registry may be filed under.
fn aliases(registry: &str) -> Vec<&str> {
    if DOCKER_HUB.contains(&registry) {
        DOCKER_HUB.to_vec()
    } else {
        vec![registry]
    }
}

fn from_config(
    config: &Value,
    registry: &str,
    file: &std::path::Path,
) -> anyhow::Result<Option<RegistryAuth>> {
    for name in aliases(registry) {
        if let Some(helper) = config["credHelpers"][name].as_str() {
            return from_helper(helper, name);
        }
    }
    for name in aliases(registry) {
        let entry = &config["auths"][name];
        if let Some(auth) = entry["auth"].as_str().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth)
                .ok()
                .and_then(|d| String::from_utf8(d).ok())
                .ok_or_else(|| {
                    anyhow!(
                        "{}: the auth entry for {name} is not base64 of user:password",
                        file.display()
                    )
                })?;
            let (user, password) = decoded.split_once(':').ok_or_else(|| {
                anyhow!(
                    "{}: the auth entry for {name} is not user:password",
                    file.display()
                )
            })?;
            return Ok(Some(RegistryAuth::Basic(user.into(), password.into())));
        }
    }
    match config["credsStore"].as_str() {
        Some(helper) => from_helper(helper, aliases(registry)[0]),
        None => Ok(None),
    }
}

/// Asks `docker-credential-<helper>` for the registry's login, as Docker
/// does: the registry on stdin, `{"Username", "Secret"}` on stdout.
fn from_helper(helper: &str, registry: &str) -> anyhow::Result<Option<RegistryAuth>> {
    ask_helper(&format!("docker-credential-{helper}"), registry)
}

fn ask_helper(program: &str, registry: &str) -> anyhow::Result<Option<RegistryAuth>> {
    use std::io::Write as _;
    let mut child = std::process::Command::new(program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("running the credential helper {program}"))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(registry.as_bytes())
        .with_context(|| format!("writing to {program}"))?;
    let out = child
        .wait_with_output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        // Helpers answer "credentials not found" for a registry they do not hold.
        let said = String::from_utf8_lossy(&out.stdout).to_lowercase();
        if said.contains("not found") {
            return Ok(None);
        }
        return Err(anyhow!(
            "the credential helper {program} failed for {registry} ({})",
            out.status
        ));
    }
    let answer: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{program} did not answer with JSON"))?;
    match (answer["Username"].as_str(), answer["Secret"].as_str()) {
        (Some(user), Some(secret)) => Ok(Some(RegistryAuth::Basic(user.into(), secret.into()))),
        _ => Err(anyhow!("{program} answered without Username and Secret")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn basic(auth: Option<RegistryAuth>) -> Option<(String, String)> {
        match auth? {
            RegistryAuth::Basic(user, password) => Some((user, password)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn docker_hub_logins_are_found_under_any_of_its_names() {
        // base64("alice:s3cret"), as `docker login` writes it.
        let config =
            json!({ "auths": { "https://index.docker.io/v1/": { "auth": "YWxpY2U6czNjcmV0" } } });
        let file = std::path::Path::new("config.json");
        assert_eq!(
            basic(from_config(&config, "docker.io", file).unwrap()),
            Some(("alice".into(), "s3cret".into()))
        );
        assert!(from_config(&config, "public.ecr.aws", file)
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_broken_entry_names_the_file_and_registry_but_not_its_text() {
        let config = json!({ "auths": { "ghcr.io": { "auth": "bm90LWEtcGFpcg==" } } });
        let err = from_config(
            &config,
            "ghcr.io",
            std::path::Path::new("/home/a/.docker/config.json"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("/home/a/.docker/config.json") && err.contains("ghcr.io"),
            "{err}"
        );
        assert!(!err.contains("not-a-pair"), "{err}");
    }

    #[test]
    fn a_credential_helper_is_asked_as_docker_asks_it() {
        let dir = std::env::temp_dir().join(format!("poolside-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let helper = dir.join("docker-credential-test");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread host\n[ \"$1\" = get ] && [ \"$host\" = docker.io ] && echo '{\"Username\":\"bob\",\"Secret\":\"tok\"}' && exit 0\necho 'credentials not found in native keychain'; exit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let program = helper.to_str().unwrap();
        let found = ask_helper(program, "docker.io").unwrap();
        assert_eq!(basic(found), Some(("bob".into(), "tok".into())));
        assert!(ask_helper(program, "quay.io").unwrap().is_none());
        std::fs::remove_dir_all(&dir).ok();
    }
}
