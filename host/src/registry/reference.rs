//! Plugin references to a registry, `oci://HOST[:PORT]/REPO:TAG` or `oci://HOST/REPO@sha256:HEX`,
//! and SHA-256 digests.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::untrusted::shown;

/// How a plugin reference to a registry starts; anything else is a file or a bare name.
pub const SCHEME: &str = "oci://";

/// A SHA-256 content digest, `sha256:` and 64 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_sha256(Sha256::digest(bytes).into())
    }

    pub fn from_sha256(hash: [u8; 32]) -> Self {
        let hex: String = hash.iter().map(|byte| format!("{byte:02x}")).collect();
        Self(format!("sha256:{hex}"))
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Digest {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let hex = text
            .strip_prefix("sha256:")
            .ok_or_else(|| format!("{} is not a sha256: digest", shown(text)))?;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(format!(
                "{} is not a SHA-256 digest (sha256: and 64 lower-case hex digits)",
                shown(text)
            ));
        }
        Ok(Self(text.to_string()))
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A plugin in a registry: `oci://HOST[:PORT]/REPO:TAG` or `oci://HOST[:PORT]/REPO@sha256:HEX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciReference {
    /// `HOST[:PORT]`, always explicit: there is no default registry.
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// A reference that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{}: malformed plugin reference: {problem}; expected oci://HOST[:PORT]/REPO:TAG or \
     oci://HOST[:PORT]/REPO@sha256:DIGEST",
    shown(text)
)]
pub struct ReferenceError {
    pub text: String,
    pub problem: String,
}

impl OciReference {
    /// Whether `spec` is meant as a registry reference.
    pub fn is_reference(spec: &str) -> bool {
        spec.starts_with(SCHEME)
    }

    /// The same repository at `digest` (a pin keeps the tag it was resolved from out).
    pub fn at_digest(&self, digest: Digest) -> Self {
        Self {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// The client library's form of the reference.
    pub(super) fn to_client(&self) -> oci_client::Reference {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => oci_client::Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                digest.to_string(),
            ),
            (None, tag) => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                tag.clone().unwrap_or_default(),
            ),
        }
    }
}

impl fmt::Display for OciReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for OciReference {
    type Err = ReferenceError;

    fn from_str(text: &str) -> Result<Self, ReferenceError> {
        let fail = |problem: &str| ReferenceError {
            text: text.to_string(),
            problem: problem.to_string(),
        };
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| fail("it does not start with oci://"))?;
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| fail("it needs a registry host, then a repository, split by '/'"))?;
        if !is_registry_host(registry) {
            return Err(fail(
                "it names no registry host (a host with a '.' or a port, or localhost); there \
                 is no default registry",
            ));
        }
        let (path, digest) = match path.split_once('@') {
            Some((path, digest)) => (path, Some(digest.parse::<Digest>().map_err(|e| fail(&e))?)),
            None => (path, None),
        };
        // The client library's grammar (the distribution reference grammar) checks the rest.
        let parsed: oci_client::Reference = rest
            .parse()
            .map_err(|e: oci_client::ParseError| fail(&e.to_string()))?;
        // The library defaults a missing tag to `latest`; a plugin reference says which.
        let names_tag = path
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'));
        let tag = parsed.tag().filter(|_| names_tag).map(str::to_string);
        if tag.is_none() && digest.is_none() {
            return Err(fail(
                "it has neither a tag (:TAG) nor a digest (@sha256:...)",
            ));
        }
        let repository = match path.rsplit_once(':') {
            Some((repository, _)) if tag.is_some() => repository,
            _ => path,
        };
        Ok(Self {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag,
            digest,
        })
    }
}

/// Whether `host` names a registry rather than the first part of a repository path, as the
/// distribution reference grammar decides: a '.', a port, or `localhost`.
fn is_registry_host(host: &str) -> bool {
    !host.is_empty() && (host.contains('.') || host.contains(':') || host == "localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn references_parse_and_print_back() {
        for text in [
            "oci://127.0.0.1:5000/mathison/postgres:0.1.0",
            "oci://registry.example.com/postgres:latest",
            &format!("oci://localhost:5000/a/b/postgres@{DIGEST}"),
            &format!("oci://localhost:5000/postgres:0.1@{DIGEST}"),
        ] {
            let parsed: OciReference = text.parse().unwrap();
            assert_eq!(parsed.to_string(), text);
        }
        let parsed: OciReference = "oci://127.0.0.1:5000/mathison/postgres:0.1.0"
            .parse()
            .unwrap();
        assert_eq!(parsed.registry, "127.0.0.1:5000");
        assert_eq!(parsed.repository, "mathison/postgres");
        assert_eq!(parsed.tag.as_deref(), Some("0.1.0"));
    }

    #[test]
    fn malformed_references_say_why() {
        for (text, needle) in [
            ("postgres:1", "oci://"),
            ("oci://postgres:1", "a registry host, then a repository"),
            ("oci://mathison/postgres:1", "no registry host"),
            ("oci://127.0.0.1:5000/postgres", "neither a tag"),
            ("oci://127.0.0.1:5000/Postgres:1", "malformed"),
            (
                "oci://127.0.0.1:5000/postgres@sha256:abc",
                "not a SHA-256 digest",
            ),
            ("oci://127.0.0.1:5000/postgres:a\u{1b}[2J", "\\u{1b}"),
        ] {
            let error = text.parse::<OciReference>().unwrap_err().to_string();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }

    #[test]
    fn digests_are_checked() {
        assert_eq!(DIGEST.parse::<Digest>().unwrap().as_str(), DIGEST);
        assert!(DIGEST.to_uppercase().parse::<Digest>().is_err());
        assert!("md5:abc".parse::<Digest>().is_err());
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
