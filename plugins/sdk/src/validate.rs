//! Checks for what a JSON Schema cannot say, reported as [`RenderError::InvalidConfig`] with the
//! field's dotted path.

use std::collections::BTreeMap;

use crate::{FieldError, Quantity, RenderError};

/// Collects every problem of a configuration, so that the user sees them all at once.
#[derive(Debug, Default)]
pub struct Problems(Vec<FieldError>);

impl Problems {
    /// Records a problem with the field at `path`.
    pub fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(path, message));
    }

    /// Records `result`'s error, if any, against `path`.
    pub fn check(&mut self, path: impl Into<String>, result: Result<(), String>) {
        if let Err(message) = result {
            self.add(path, message);
        }
    }

    /// Requires a quantity above zero (a size, a CPU or memory amount).
    pub fn positive(&mut self, path: impl Into<String>, quantity: &Quantity) {
        if !quantity.is_positive() {
            self.add(path, format!("must be above zero, not \"{quantity}\""));
        }
    }

    /// `Ok` if nothing was recorded, else `invalid-config` with every problem.
    pub fn finish(self) -> Result<(), RenderError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(RenderError::InvalidConfig(self.0))
        }
    }
}

fn is_alphanumeric_lower(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// A DNS-1123 label (Service names, port names are shorter): `[a-z0-9]([-a-z0-9]*[a-z0-9])?`,
/// at most 63 characters.
pub fn dns_label(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value.chars().all(|c| is_alphanumeric_lower(c) || c == '-')
        && value.starts_with(is_alphanumeric_lower)
        && value.ends_with(is_alphanumeric_lower);
    ok.then_some(()).ok_or_else(|| {
        format!(
            "\"{value}\" is not a DNS-1123 label (lower-case letters, digits and '-', at most 63)"
        )
    })
}

/// A DNS-1123 subdomain (the name of a Secret, a StorageClass): dot-separated labels, at most
/// 253 characters.
pub fn dns_subdomain(value: &str) -> Result<(), String> {
    let ok = value.len() <= 253 && value.split('.').all(|label| dns_label(label).is_ok());
    ok.then_some(()).ok_or_else(|| {
        format!("\"{value}\" is not a DNS-1123 subdomain (lower-case letters, digits, '-' and '.')")
    })
}

/// A key of a Secret or ConfigMap: `[-._a-zA-Z0-9]+`, at most 253 characters.
pub fn data_key(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 253
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        && value != "."
        && value != "..";
    ok.then_some(()).ok_or_else(|| {
        format!("\"{value}\" is not a Secret key (letters, digits, '-', '_' and '.')")
    })
}

fn is_label_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A label value: empty, or at most 63 of `[-_.a-zA-Z0-9]`, alphanumeric at both ends.
pub fn label_value(value: &str) -> Result<(), String> {
    (value.is_empty() || is_label_name(value))
        .then_some(())
        .ok_or_else(|| {
            format!(
                "\"{value}\" is not a label value (at most 63 of letters, digits, '-', '_', '.')"
            )
        })
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name like a label value.
pub fn label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = key
        .rsplit_once('/')
        .map_or((None, key), |(p, n)| (Some(p), n));
    let ok = prefix.is_none_or(|p| dns_subdomain(p).is_ok()) && is_label_name(name);
    ok.then_some(())
        .ok_or_else(|| format!("\"{key}\" is not a label key (e.g. \"example.com/role\")"))
}

/// A non-empty set of valid labels, e.g. a pod selector (an empty one would select every pod).
pub fn selector(problems: &mut Problems, path: &str, labels: &BTreeMap<String, String>) {
    if labels.is_empty() {
        problems.add(
            path,
            "must name at least one label; an empty selector matches every pod",
        );
    }
    for (key, value) in labels {
        problems.check(
            format!("{path}.{key}"),
            label_key(key).and(label_value(value)),
        );
    }
}

/// An IPv4 or IPv6 network in CIDR notation (`10.0.0.0/8`, `fd00::/8`), prefix included.
pub fn cidr(value: &str) -> Result<(), String> {
    let ok = value.split_once('/').is_some_and(|(address, prefix)| {
        let max = match address.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(_)) => 32,
            Ok(std::net::IpAddr::V6(_)) => 128,
            Err(_) => return false,
        };
        prefix.parse::<u8>().is_ok_and(|p| p <= max) && !prefix.starts_with('+')
    });
    ok.then_some(())
        .ok_or_else(|| format!("\"{value}\" is not a network in CIDR notation (\"10.0.0.0/8\")"))
}

/// The form of [`external_host`] as a JSON Schema `pattern`: DNS-1123 labels, the last one
/// starting with a letter (no top-level domain is numeric, so no IP address matches).
pub const EXTERNAL_HOST_PATTERN: &str =
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z]([-a-z0-9]*[a-z0-9])?$";

/// The host of an external service that a Service of type `ExternalName` aliases: a lower-case
/// DNS name, not an IP address. Cluster DNS answers for such a Service with a CNAME record to
/// it, and a CNAME can only name a name: an address would be looked up as a host called
/// "10.0.0.5" and resolve to nothing.
pub fn external_host(value: &str) -> Result<(), String> {
    let last_label_starts_with_letter = value
        .rsplit('.')
        .next()
        .is_some_and(|label| label.starts_with(|c: char| c.is_ascii_lowercase()));
    (dns_subdomain(value).is_ok() && last_label_starts_with_letter)
        .then_some(())
        .ok_or_else(|| {
            format!(
                "\"{value}\" is not a lower-case DNS name (e.g. \"db.example.com\"): the Service \
                 of type ExternalName that keeps the in-cluster name working is a DNS CNAME, \
                 which can point at a name only, never at an IP address"
            )
        })
}

/// A TCP port number: 1 to 65535.
pub fn port(value: u16) -> Result<(), String> {
    (value != 0)
        .then_some(())
        .ok_or_else(|| "0 is not a port; use 1 to 65535".to_owned())
}

/// A container image reference: no whitespace, not empty.
pub fn image(value: &str) -> Result<(), String> {
    (!value.is_empty() && !value.contains(char::is_whitespace))
        .then_some(())
        .ok_or_else(|| format!("\"{value}\" is not an image reference"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(dns_label("mathison-secrets").is_ok());
        assert!(dns_label("Mathison").is_err());
        assert!(dns_label("-a").is_err());
        assert!(dns_label(&"a".repeat(64)).is_err());
        assert!(dns_subdomain("fast.ssd").is_ok());
        assert!(dns_subdomain("fast..ssd").is_err());
        assert!(data_key("postgres-password").is_ok());
        assert!(data_key("a/b").is_err());
        assert!(label_key("mathison.dev/postgres-client").is_ok());
        assert!(label_key("app").is_ok());
        assert!(label_key("Bad_Prefix/x").is_err());
        assert!(label_value("true").is_ok());
        assert!(label_value("").is_ok());
        assert!(label_value("a b").is_err());
        assert!(image("redis:7-alpine").is_ok());
        assert!(image("redis 7").is_err());
        assert!(cidr("10.0.0.0/8").is_ok() && cidr("fd00::/8").is_ok());
        assert!(cidr("10.0.0.0").is_err() && cidr("10.0.0.0/33").is_err() && cidr("x/8").is_err());
        assert!(port(5432).is_ok() && port(0).is_err());
    }

    #[test]
    fn external_hosts_are_dns_names_never_addresses() {
        for host in [
            "db.example.com",
            "mathison.c9akciq32.eu-west-1.rds.amazonaws.com",
            "pg-1.internal",
            "localdb",
        ] {
            assert!(external_host(host).is_ok(), "{host}");
        }
        for host in [
            "10.0.0.5",
            "db.example.123",
            "::1",
            "DB.example.com",
            "db.example.com.",
            "db..example.com",
            "-db.example.com",
            "db_1.example.com",
            "",
        ] {
            let refused = external_host(host).expect_err(host);
            assert!(refused.contains("ExternalName"), "{refused}");
        }
    }

    #[test]
    fn problems_keep_paths() {
        let mut problems = Problems::default();
        let zero: Quantity = "0".parse().unwrap_or_else(|e| panic!("{e}"));
        problems.positive("persistence.size", &zero);
        selector(&mut problems, "clientLabels", &BTreeMap::new());
        match problems.finish() {
            Err(RenderError::InvalidConfig(errors)) => {
                let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
                assert_eq!(paths, ["persistence.size", "clientLabels"]);
            }
            other => panic!("expected invalid-config, got {other:?}"),
        }
    }
}
