//! Registry credentials, read from the files `docker login` and `podman login` write:
//! `$REGISTRY_AUTH_FILE`, then `$DOCKER_CONFIG/config.json` (or `~/.docker/config.json`).
//! Credentials are never shown: not in errors, not in `Debug`, not with `-v`; messages say only
//! which files were looked at.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

/// The credential to use for one registry, and where it was looked for.
pub struct Credentials {
    pub auth: RegistryAuth,
    /// For messages: which source gave the credential, or which sources were tried.
    pub tried: String,
}

/// Shows where the credential came from, never the credential.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("tried", &self.tried)
            .finish_non_exhaustive()
    }
}

/// A credentials file that exists but cannot be used. Names the file, never its content.
#[derive(Debug, thiserror::Error)]
#[error("credentials file {path} {problem}")]
pub struct AuthFileError {
    pub path: PathBuf,
    pub problem: String,
}

/// `config.json`/`auth.json`: only `auths` matters here; helpers (`credsStore`,
/// `credHelpers`) are external programs this host does not run.
#[derive(Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The credential for `registry` (`HOST[:PORT]`) from the first file that has one; anonymous
/// when none has. `env` reads an environment variable (a parameter, for tests).
pub fn credentials_for(
    registry: &str,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Credentials, AuthFileError> {
    let files = auth_files(&env);
    for (label, path) in &files {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => {
                return Err(AuthFileError {
                    path: path.clone(),
                    problem: format!("cannot be read: {error}"),
                });
            }
        };
        let file: AuthFile = serde_json::from_str(&text).map_err(|e| AuthFileError {
            path: path.clone(),
            // serde_json's message names a line and column, not the text around it.
            problem: format!("is not a credentials file: {e}"),
        })?;
        if let Some(entry) = file
            .auths
            .iter()
            .find(|(key, _)| registry_of_key(key) == registry)
            .map(|(_, entry)| entry)
        {
            let auth = basic_auth(entry).ok_or_else(|| AuthFileError {
                path: path.clone(),
                problem: format!(
                    "has an entry for {registry} without a usable \"auth\" or \
                     \"username\"/\"password\""
                ),
            })?;
            return Ok(Credentials {
                auth,
                tried: format!(
                    "the credentials for {registry} in {label} ({})",
                    path.display()
                ),
            });
        }
    }
    let looked = files
        .iter()
        .map(|(label, path)| format!("{label} ({})", path.display()))
        .collect::<Vec<_>>();
    Ok(Credentials {
        auth: RegistryAuth::Anonymous,
        tried: if looked.is_empty() {
            "anonymous access (no credentials file: $REGISTRY_AUTH_FILE, $DOCKER_CONFIG and \
             $HOME are unset)"
                .to_string()
        } else {
            format!(
                "anonymous access (no credentials for {registry} in {})",
                looked.join(", ")
            )
        },
    })
}

/// The credentials files, in the order they are consulted, with how messages name them.
fn auth_files(env: &impl Fn(&str) -> Option<OsString>) -> Vec<(&'static str, PathBuf)> {
    let set = |name: &str| {
        env(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    let mut files = Vec::new();
    if let Some(path) = set("REGISTRY_AUTH_FILE") {
        files.push(("$REGISTRY_AUTH_FILE", path));
    }
    if let Some(dir) = set("DOCKER_CONFIG") {
        files.push(("$DOCKER_CONFIG/config.json", dir.join("config.json")));
    } else if let Some(home) = set("HOME") {
        files.push((
            "~/.docker/config.json",
            home.join(".docker").join("config.json"),
        ));
    }
    files
}

/// `HOST[:PORT]` of an `auths` key, which may be written as a URL
/// (`https://index.docker.io/v1/`).
fn registry_of_key(key: &str) -> &str {
    let without_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    without_scheme.split('/').next().unwrap_or(without_scheme)
}

fn basic_auth(entry: &AuthEntry) -> Option<RegistryAuth> {
    if let (Some(user), Some(password)) = (&entry.username, &entry.password) {
        return Some(RegistryAuth::Basic(user.clone(), password.clone()));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(entry.auth.as_deref()?.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some(RegistryAuth::Basic(user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &[(&str, PathBuf)]) -> impl Fn(&str) -> Option<OsString> + use<> {
        let vars: Vec<(String, PathBuf)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        move |name| {
            vars.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone().into_os_string())
        }
    }

    #[test]
    fn the_first_file_with_the_registry_wins_and_secrets_are_not_shown() {
        let dir = tempfile::tempdir().unwrap();
        let podman = dir.path().join("auth.json");
        std::fs::write(
            &podman,
            r#"{"auths":{"other.example:5000":{"auth":"eDp5"}}}"#,
        )
        .unwrap();
        let docker = dir.path().join("docker");
        std::fs::create_dir(&docker).unwrap();
        // "alice:s3cret" in base64.
        std::fs::write(
            docker.join("config.json"),
            r#"{"auths":{"https://127.0.0.1:5000/v2/":{"auth":"YWxpY2U6czNjcmV0"}},"credsStore":"x"}"#,
        )
        .unwrap();
        let env = env_of(&[("REGISTRY_AUTH_FILE", podman), ("DOCKER_CONFIG", docker)]);
        let found = credentials_for("127.0.0.1:5000", &env).unwrap();
        assert!(matches!(&found.auth, RegistryAuth::Basic(u, p) if u == "alice" && p == "s3cret"));
        assert!(
            found.tried.contains("$DOCKER_CONFIG/config.json"),
            "{}",
            found.tried
        );
        assert!(!format!("{found:?}").contains("s3cret"));

        let none = credentials_for("registry.example", &env).unwrap();
        assert!(matches!(none.auth, RegistryAuth::Anonymous));
        assert!(none.tried.contains("$REGISTRY_AUTH_FILE"), "{}", none.tried);
    }

    #[test]
    fn a_broken_file_is_named_without_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth.json");
        std::fs::write(
            &file,
            r#"{"auths":{"127.0.0.1:5000":{"auth":"s3cret-not-base64"}}}"#,
        )
        .unwrap();
        let error = credentials_for("127.0.0.1:5000", env_of(&[("REGISTRY_AUTH_FILE", file)]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("auth.json") && !error.contains("s3cret"),
            "{error}"
        );
        let anonymous = credentials_for("127.0.0.1:5000", env_of(&[])).unwrap();
        assert!(anonymous.tried.contains("unset"), "{}", anonymous.tried);
    }
}
