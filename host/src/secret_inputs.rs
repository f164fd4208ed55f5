//! Secrets the user hands to the host (`--secret-input PLUGIN.NAME=file:PATH` or `=env:VAR`),
//! each bound to the one plugin it is for.
//!
//! A plugin asks for a secret input by name and gets a connection value filled with it; it
//! never sees the secret. Binding the input to a plugin name means another plugin asking for
//! the same name gets nothing: a secret meant for PostgreSQL cannot end up in another plugin's
//! connection value.

use std::collections::BTreeMap;
use std::fmt;

/// The secret inputs of a render, by plugin name and input name.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretInputs(BTreeMap<(String, String), String>);

/// Never shows the secrets themselves.
impl fmt::Debug for SecretInputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// A `--secret-input` that could not be read. Never shows the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--secret-input {arg}: {message}; expected PLUGIN.NAME=file:PATH or PLUGIN.NAME=env:VAR \
     (e.g. postgres.postgres-password=file:./pg-password)"
)]
pub struct SecretInputError {
    pub arg: String,
    pub message: String,
}

impl SecretInputs {
    /// Reads every `--secret-input` argument.
    pub fn read(args: &[String]) -> Result<Self, SecretInputError> {
        let mut inputs = BTreeMap::new();
        for arg in args {
            let fail = |message: String| SecretInputError {
                arg: arg.clone(),
                message,
            };
            let (target, source) = arg.split_once('=').ok_or_else(|| fail("no '='".into()))?;
            let (plugin, name) = target
                .split_once('.')
                .filter(|(plugin, name)| !plugin.is_empty() && !name.is_empty())
                .ok_or_else(|| {
                    fail(format!(
                        "{target:?} names no plugin; a secret input is bound to the plugin it \
                         is for, as PLUGIN.NAME"
                    ))
                })?;
            let secret = read_source(source).map_err(fail)?;
            if secret.is_empty() {
                return Err(fail("the secret is empty".into()));
            }
            inputs.insert((plugin.to_string(), name.to_string()), secret);
        }
        Ok(Self(inputs))
    }

    /// The secret `name` bound to `plugin`, if the user gave one.
    pub fn get(&self, plugin: &str, name: &str) -> Option<&str> {
        self.0
            .get(&(plugin.to_string(), name.to_string()))
            .map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The plugin names the inputs are bound to.
    pub fn plugins(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(|(plugin, _)| plugin.as_str())
    }

    #[cfg(test)]
    pub fn insert(&mut self, plugin: &str, name: &str, secret: &str) {
        self.0
            .insert((plugin.to_string(), name.to_string()), secret.to_string());
    }
}

fn read_source(source: &str) -> Result<String, String> {
    if let Some(path) = source.strip_prefix("file:") {
        Ok(std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {path}: {e}"))?
            // Files written by `echo` or editors end with a newline that is not part of it.
            .trim_end_matches(['\n', '\r'])
            .to_string())
    } else if let Some(var) = source.strip_prefix("env:") {
        std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))
    } else {
        Err("the source must start with file: or env:".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_bound_to_a_plugin() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n")?;
        let inputs = SecretInputs::read(&[format!(
            "postgres.postgres-password=file:{}",
            file.display()
        )])?;
        assert_eq!(inputs.get("postgres", "postgres-password"), Some("s3cret"));
        assert_eq!(inputs.get("hostile", "postgres-password"), None);
        assert!(!format!("{inputs:?}").contains("s3cret"));
        Ok(())
    }

    #[test]
    fn an_unbound_input_is_refused_with_the_expected_form() {
        let error = SecretInputs::read(&["postgres-password=env:HOME".to_string()])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("names no plugin") && error.contains("PLUGIN.NAME"),
            "{error}"
        );
    }
}
