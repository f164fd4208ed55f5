//! The host's own view of the WIT contract (`wit/world.wit`).
//!
//! The runtime converts the generated bindings into these plain types, so that every later
//! stage can be built and tested without wasmtime.

use std::fmt;

/// The WIT package version this host serves.
pub const WIT_PACKAGE: &str = "mathison:plugin";
/// The WIT package version this host serves.
pub const WIT_VERSION: &str = "0.1.0";

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    /// The whole object as JSON text.
    pub body: String,
}

/// A setting the application needs to reach a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionValue {
    pub key: String,
    pub value: String,
    /// The user secret that fills the `{secret}` placeholder of `value`.
    pub secret_input: Option<String>,
}

/// What `render` returned on success.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
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
