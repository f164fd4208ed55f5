//! The host's own view of the WIT contract (`wit/world.wit`).
//!
//! The runtime converts the generated bindings into these plain types, so that every later
//! stage can be built and tested without wasmtime.

use std::fmt;

/// The WIT package of the contract.
pub const WIT_PACKAGE: &str = "mathison:plugin";
/// The version of [`WIT_PACKAGE`] this host implements (`wit/world.wit`); it also runs plugins
/// built against the earlier versions [`WitVersion::serves`] accepts.
pub const WIT_VERSION: WitVersion = WitVersion {
    major: 0,
    minor: 1,
    patch: 0,
};

/// A version of the WIT package: three numbers. The contract never uses pre-release or build
/// suffixes, so a version that has one is not the contract's.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct WitVersion {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl WitVersion {
    /// Parses `MAJOR.MINOR.PATCH`, each a number without leading zeros, as semver writes them.
    pub fn parse(text: &str) -> Option<Self> {
        let number = |part: &str| {
            let canonical = part == "0" || !part.starts_with('0');
            let digits = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
            (canonical && digits).then(|| part.parse().ok()).flatten()
        };
        let mut parts = text.split('.');
        let version = Self {
            major: number(parts.next()?)?,
            minor: number(parts.next()?)?,
            patch: number(parts.next()?)?,
        };
        parts.next().is_none().then_some(version)
    }

    /// Whether a host implementing `self` runs a plugin built against `plugin`: any version of
    /// the same series, up to `self`. A series is what Cargo's caret requirement and wasmtime's
    /// linker treat as compatible: same major from 1.0 on, same major and minor before, a
    /// version of its own for 0.0.x. Within a series a later version only adds, so a plugin
    /// built against an earlier one finds everything it imports; one built against a later
    /// version may import what this host lacks, and is refused.
    pub fn serves(self, plugin: WitVersion) -> bool {
        (self.oldest_served()..=self).contains(&plugin)
    }

    /// The first version of `self`'s series.
    pub fn oldest_served(self) -> WitVersion {
        match self {
            Self {
                major: 0, minor: 0, ..
            } => self,
            Self {
                major: 0, minor, ..
            } => Self {
                major: 0,
                minor,
                patch: 0,
            },
            Self { major, .. } => Self {
                major,
                minor: 0,
                patch: 0,
            },
        }
    }
}

impl fmt::Display for WitVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// How loud a plugin's log line is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        })
    }
}

/// One line a plugin logged through the `host.log` import.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

/// The apiVersion and kind of an object.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct KindRef {
    pub api_version: String,
    pub kind: String,
}

impl fmt::Display for KindRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.api_version, self.kind)
    }
}

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    /// JSON Schema of the configuration, as JSON text.
    pub config_schema: String,
    /// The default configuration, as JSON text.
    pub default_config: String,
    pub kinds: Vec<KindRef>,
}

/// Where and as what objects are rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderContext {
    pub namespace: String,
    pub instance: String,
    pub host_version: String,
}

/// One object as a plugin returned it, not yet decoded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Envelope {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    /// The whole object as JSON text.
    pub body: String,
}

/// A setting the application needs to reach a service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConnectionValue {
    pub key: String,
    pub value: String,
    /// The user secret that fills the `{secret}` placeholder of `value`.
    pub secret_input: Option<String>,
}

/// What `render` returned on success.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct RenderOutput {
    pub objects: Vec<Envelope>,
    pub connection_values: Vec<ConnectionValue>,
}

/// A problem with one configuration field, as a plugin reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

/// Why a plugin's `render` failed, in the plugin's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    InvalidConfig(Vec<FieldError>),
    Internal(String),
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderError::InvalidConfig(errors) => {
                f.write_str("invalid configuration")?;
                for error in errors {
                    write!(f, "\n  {}: {}", error.path, error.message)?;
                }
                Ok(())
            }
            RenderError::Internal(message) => write!(f, "internal plugin error: {message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(text: &str) -> WitVersion {
        WitVersion::parse(text).expect("a version")
    }

    #[test]
    fn the_served_version_is_the_one_world_wit_declares() {
        let world = include_str!("../../../wit/world.wit");
        let package = format!("\npackage {WIT_PACKAGE}@{WIT_VERSION};\n");
        assert!(world.contains(&package), "wit/world.wit lacks {package:?}");
    }

    #[test]
    fn versions_are_three_plain_numbers() {
        assert_eq!(
            version("0.12.3"),
            WitVersion {
                major: 0,
                minor: 12,
                patch: 3
            }
        );
        assert_eq!(version("10.0.0").to_string(), "10.0.0");
        for not_ours in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "1.2.3-rc.1",
            "1.2.3+build",
            "01.2.3",
            "1..3",
            "a.b.c",
            "1.2.-3",
            "1.2.99999999999999999999",
        ] {
            assert_eq!(WitVersion::parse(not_ours), None, "{not_ours:?}");
        }
    }

    #[test]
    fn a_host_serves_its_series_up_to_its_own_version() {
        let served = |host: &str, plugin: &str| version(host).serves(version(plugin));
        // Before 1.0 a series is one minor version: earlier patches load, later ones do not.
        assert!(served("0.1.0", "0.1.0"));
        assert!(served("0.1.3", "0.1.0"));
        assert!(served("0.1.3", "0.1.2"));
        assert!(!served("0.1.3", "0.1.4"));
        assert!(!served("0.1.0", "0.1.1"));
        assert!(!served("0.2.0", "0.1.9"));
        assert!(!served("0.1.0", "0.2.0"));
        assert!(!served("0.1.0", "1.1.0"));
        // 0.0.x versions are each a series of their own.
        assert!(served("0.0.3", "0.0.3"));
        assert!(!served("0.0.3", "0.0.2"));
        // From 1.0 a series is one major version.
        assert!(served("1.4.2", "1.0.0"));
        assert!(served("1.4.2", "1.4.1"));
        assert!(!served("1.4.2", "1.5.0"));
        assert!(!served("2.0.0", "1.9.9"));
    }
}
