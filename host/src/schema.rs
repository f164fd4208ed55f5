//! A plugin's JSON Schema, used within bounds.
//!
//! The schema comes from the plugin, but checking a configuration against it runs in the host,
//! outside the sandbox's limits. So, before any use, the schema must be small once its `$ref`s
//! are expanded (a few kilobytes of references can otherwise stand for billions of nodes), may
//! refer only inside itself, and its patterns are compiled by a regular-expression engine that
//! runs in linear time (no backtracking; look-around and back-references are refused). The
//! check itself runs under the plugin's time limit, on a thread of its own that is abandoned
//! past it, as the runtime does with a plugin call.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, PatternOptions};
use serde_json::Value;

use crate::untrusted::shown;

/// The most nodes a schema may have with every `$ref` expanded where it is used. Generated
/// configuration schemas have hundreds; this leaves room without letting references multiply.
pub const MAX_EXPANDED_NODES: usize = 100_000;
/// The most problems reported for one configuration: enough to fix, bounded to show.
pub const MAX_VIOLATIONS: usize = 50;
/// The draft plugins' schemas are written for, and what the validator reads one that names
/// no `$schema` as.
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";
/// Compiled size limits of one pattern (the regex crate's defaults are 10x larger).
const PATTERN_SIZE_LIMIT: usize = 1 << 20;
const PATTERN_DFA_SIZE_LIMIT: usize = 1 << 20;

/// Why a schema cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("the plugin's config schema is not JSON: {0}")]
    NotJson(String),
    #[error(
        "the plugin's config schema expands to more than {MAX_EXPANDED_NODES} nodes through its \
         $refs; the host refuses schemas that costly to check"
    )]
    TooLarge,
    #[error(
        "the plugin's config schema has {keyword} {:?} at {}; only local references to a JSON \
         pointer (\"#/$defs/...\") are supported",
        shown(value),
        display_pointer(at)
    )]
    UnsupportedReference {
        keyword: &'static str,
        value: String,
        at: String,
    },
    #[error(
        "the plugin's config schema is written for {}, not draft 2020-12 ({DRAFT_2020_12}); \
         only draft 2020-12 schemas can be combined into one",
        shown(.0)
    )]
    OtherDraft(String),
    #[error("the plugin's config schema is invalid: {}", shown(.0))]
    Invalid(String),
    #[error(
        "checking the configuration against the plugin's schema did not finish within the time \
         limit of {0:?} (--timeout)"
    )]
    Timeout(Duration),
    #[error("checking the configuration could not start: cannot create a thread for it")]
    Thread,
}

/// One way the configuration breaks the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer into the configuration.
    pub pointer: String,
    pub kind: ViolationKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViolationKind {
    /// Keys the schema does not allow, under `pointer`.
    UnknownKeys(Vec<String>),
    /// The value does not match the pattern of a field that has a description (escaped),
    /// which says more to a person than the pattern.
    Pattern { value: String, description: String },
    /// Anything else, as a message with plugin text escaped.
    Other(String),
}

/// A parsed schema that passed the bounds, ready to check configurations.
#[derive(Debug, Clone)]
pub struct Schema {
    /// Shared with the thread of each check rather than copied for it.
    root: Arc<Value>,
}

impl Schema {
    /// Parses `text` and checks its bounds: local references only, and a bounded size with
    /// every reference expanded.
    pub fn parse(text: &str) -> Result<Self, SchemaError> {
        let schema = Self::parse_within_bounds(text)?;
        Expansion::new(&schema.root).size()?;
        Ok(schema)
    }

    /// Parses `text`, a schema that [`parse`](Self::parse) accepted before, without checking
    /// its bounds again.
    pub fn parse_within_bounds(text: &str) -> Result<Self, SchemaError> {
        let root: Value =
            serde_json::from_str(text).map_err(|e| SchemaError::NotJson(e.to_string()))?;
        Ok(Self {
            root: Arc::new(root),
        })
    }

    pub fn root(&self) -> &Value {
        &self.root
    }

    /// The schema as a part of a larger document, at the JSON pointer `at` (`/$defs/postgres`):
    /// its references rewritten to point there, and without the `$schema` and `$id` that only
    /// a document's root may carry (its references are all local, so its `$id` resolves none).
    /// Only a draft 2020-12 schema can be embedded: the document's draft applies to all of it.
    pub fn embedded_at(&self, at: &str) -> Result<Value, SchemaError> {
        if Draft::default().detect(&self.root) != Draft::Draft202012 {
            let declared = self.root.get("$schema").unwrap_or(&Value::Null);
            return Err(SchemaError::OtherDraft(declared.to_string()));
        }
        let mut embedded = Value::clone(&self.root);
        if let Value::Object(root) = &mut embedded {
            root.remove("$schema");
            root.remove("$id");
        }
        rebase_references(&mut embedded, at);
        Ok(embedded)
    }

    /// The ways `config` breaks the schema (at most [`MAX_VIOLATIONS`]), found within
    /// `time_limit`.
    pub fn check(
        &self,
        config: &Value,
        time_limit: Duration,
    ) -> Result<Vec<Violation>, SchemaError> {
        let (sender, receiver) = mpsc::sync_channel(1);
        let root = Arc::clone(&self.root);
        let config = config.clone();
        thread::Builder::new()
            .name("schema-check".into())
            .spawn(move || {
                // Nobody may be waiting any more; there is no one left to tell.
                let _ = sender.send(violations(&root, &config));
            })
            .map_err(|_| SchemaError::Thread)?;
        match receiver.recv_timeout(time_limit) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(SchemaError::Timeout(time_limit)),
            Err(RecvTimeoutError::Disconnected) => {
                Err(SchemaError::Invalid("the schema check failed".into()))
            }
        }
    }
}

/// Points every reference in `value` (`#` or `#/...`, the only ones [`Schema::parse`] accepts)
/// below `at`. Every `$ref` member counts, as [`Expansion`] counts them: whatever the bounds
/// were checked for is what is rewritten. serde_json's nesting limit bounds the recursion.
fn rebase_references(value: &mut Value, at: &str) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match (key.as_str(), child) {
                    ("$ref", Value::String(reference)) => {
                        if let Some(pointer) = reference.strip_prefix('#') {
                            *reference = format!("#{at}{pointer}");
                        }
                    }
                    (_, child) => rebase_references(child, at),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                rebase_references(item, at);
            }
        }
        _ => {}
    }
}

fn violations(root: &Value, config: &Value) -> Result<Vec<Violation>, SchemaError> {
    let validator = jsonschema::options()
        .with_pattern_options(
            PatternOptions::regex()
                .size_limit(PATTERN_SIZE_LIMIT)
                .dfa_size_limit(PATTERN_DFA_SIZE_LIMIT),
        )
        .build(root)
        .map_err(|e| SchemaError::Invalid(e.to_string()))?;
    Ok(validator
        .iter_errors(config)
        .take(MAX_VIOLATIONS)
        .map(|error| {
            let pointer = error.instance_path().as_str().to_string();
            let description = matches!(error.kind(), ValidationErrorKind::Pattern { .. })
                .then(|| error.schema_path().as_str().strip_suffix("/pattern"))
                .flatten()
                .and_then(|field| root.pointer(field))
                .and_then(|field| field.get("description"))
                .and_then(Value::as_str);
            let kind = match (error.kind(), description) {
                (ValidationErrorKind::AdditionalProperties { unexpected }, _) => {
                    ViolationKind::UnknownKeys(unexpected.clone())
                }
                (_, Some(description)) => ViolationKind::Pattern {
                    value: error.instance().to_string(),
                    description: shown(description),
                },
                _ => ViolationKind::Other(shown(&error.to_string())),
            };
            Violation { pointer, kind }
        })
        .collect())
}

/// Counts a schema's nodes with every `$ref` expanded where it is used, memoising each
/// reference's size, so the count costs one walk however much the references multiply. A
/// reference back into one being expanded (recursion) counts as one node: its cost follows
/// the configuration's depth, which the output limit bounds.
struct Expansion<'a> {
    root: &'a Value,
    sizes: HashMap<&'a str, usize>,
    expanding: Vec<&'a str>,
}

impl<'a> Expansion<'a> {
    fn new(root: &'a Value) -> Self {
        Self {
            root,
            sizes: HashMap::new(),
            expanding: Vec::new(),
        }
    }

    fn size(&mut self) -> Result<usize, SchemaError> {
        let size = self.node(self.root, &mut String::new())?;
        if size > MAX_EXPANDED_NODES {
            return Err(SchemaError::TooLarge);
        }
        Ok(size)
    }

    fn node(&mut self, value: &'a Value, at: &mut String) -> Result<usize, SchemaError> {
        let mut size = 1usize;
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let unsupported = |keyword| SchemaError::UnsupportedReference {
                        keyword,
                        value: child.to_string(),
                        at: at.clone(),
                    };
                    match (key.as_str(), child) {
                        ("$ref", Value::String(reference)) => {
                            let pointer = reference
                                .strip_prefix('#')
                                .filter(|p| p.is_empty() || p.starts_with('/'))
                                .ok_or_else(|| unsupported("$ref"))?;
                            size = size.saturating_add(self.reference(pointer, at)?);
                        }
                        ("$dynamicRef", _) => return Err(unsupported("$dynamicRef")),
                        ("$recursiveRef", _) => return Err(unsupported("$recursiveRef")),
                        // A nested base URI would change what "#/..." means below it.
                        ("$id", _) if !at.is_empty() => return Err(unsupported("$id")),
                        _ => {}
                    }
                    let length = at.len();
                    at.push('/');
                    at.push_str(&key.replace('~', "~0").replace('/', "~1"));
                    size = size.saturating_add(self.node(child, at)?);
                    at.truncate(length);
                    if size > MAX_EXPANDED_NODES {
                        return Err(SchemaError::TooLarge);
                    }
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    let length = at.len();
                    at.push_str(&format!("/{index}"));
                    size = size.saturating_add(self.node(child, at)?);
                    at.truncate(length);
                    if size > MAX_EXPANDED_NODES {
                        return Err(SchemaError::TooLarge);
                    }
                }
            }
            _ => {}
        }
        Ok(size)
    }

    fn reference(&mut self, pointer: &'a str, at: &str) -> Result<usize, SchemaError> {
        if let Some(size) = self.sizes.get(pointer) {
            return Ok(*size);
        }
        if self.expanding.contains(&pointer) {
            return Ok(1);
        }
        let target =
            self.root
                .pointer(pointer)
                .ok_or_else(|| SchemaError::UnsupportedReference {
                    keyword: "$ref",
                    value: format!("#{pointer}"),
                    at: at.to_string(),
                })?;
        self.expanding.push(pointer);
        let size = self.node(target, &mut pointer.to_string());
        self.expanding.pop();
        let size = size?;
        self.sizes.insert(pointer, size);
        Ok(size)
    }
}

fn display_pointer(pointer: &str) -> String {
    if pointer.is_empty() {
        "the root".to_string()
    } else {
        shown(pointer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMIT: Duration = Duration::from_secs(10);

    fn parse(schema: &Value) -> Result<Schema, SchemaError> {
        Schema::parse(&schema.to_string())
    }

    /// `depth` levels of definitions, each referring twice to the next: 2^depth nodes expanded.
    fn fan_out(depth: usize) -> Value {
        let mut defs = serde_json::Map::new();
        for level in 0..depth {
            let next = format!("#/$defs/d{}", level + 1);
            defs.insert(
                format!("d{level}"),
                json!({"allOf": [{"$ref": next}, {"$ref": next}]}),
            );
        }
        defs.insert(format!("d{depth}"), json!({"type": "string"}));
        json!({"$defs": defs, "$ref": "#/$defs/d0"})
    }

    #[test]
    fn references_that_multiply_are_refused_before_any_check() {
        assert!(parse(&fan_out(4)).is_ok());
        assert_eq!(parse(&fan_out(40)).err(), Some(SchemaError::TooLarge));
    }

    #[test]
    fn recursive_references_are_allowed_and_terminate() -> Result<(), SchemaError> {
        let schema = parse(&json!({
            "type": "object",
            "properties": {"child": {"$ref": "#"}, "name": {"type": "string"}},
            "additionalProperties": false
        }))?;
        let config = json!({"child": {"child": {"nmae": "x"}}});
        let found = schema.check(&config, LIMIT)?;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].pointer, "/child/child");
        Ok(())
    }

    #[test]
    fn only_local_pointer_references_are_supported() {
        for schema in [
            json!({"$ref": "https://example.com/schema.json"}),
            json!({"$ref": "#anchor"}),
            json!({"$dynamicRef": "#meta"}),
            json!({"properties": {"a": {"$id": "other", "$ref": "#/x"}}}),
            json!({"$ref": "#/$defs/missing"}),
        ] {
            assert!(
                matches!(
                    parse(&schema),
                    Err(SchemaError::UnsupportedReference { .. })
                ),
                "{schema}"
            );
        }
    }

    #[test]
    fn an_embedded_schema_checks_as_it_does_alone() -> Result<(), Box<dyn std::error::Error>> {
        let schema = parse(&json!({
            "$schema": DRAFT_2020_12,
            // Kept, it would make "#/$defs/plugin/..." below resolve against itself.
            "$id": "https://example.com/plugin.json",
            "$defs": {"size": {"type": "integer", "minimum": 1}},
            "type": "object",
            "properties": {"size": {"$ref": "#/$defs/size"}, "child": {"$ref": "#"}},
            "additionalProperties": false
        }))?;
        let embedded = schema.embedded_at("/$defs/plugin")?;
        assert!(embedded.get("$schema").is_none() && embedded.get("$id").is_none());
        let document = json!({
            "$schema": DRAFT_2020_12,
            "properties": {"plugin": {"$ref": "#/$defs/plugin"}},
            "$defs": {"plugin": embedded}
        });
        let whole = jsonschema::validator_for(&document)?;
        for config in [
            json!({"size": 2, "child": {"child": {"size": 3}}}),
            json!({"child": {"size": 0}}),
            json!({"child": {"child": {"nmae": 1}}}),
            json!({"size": "big", "child": null}),
        ] {
            let alone: Vec<String> = schema
                .check(&config, LIMIT)?
                .into_iter()
                .map(|violation| format!("/plugin{}", violation.pointer))
                .collect();
            let within: Vec<String> = whole
                .iter_errors(&json!({"plugin": config}))
                .map(|error| error.instance_path().as_str().to_string())
                .collect();
            assert_eq!(within, alone, "{config}");
        }
        Ok(())
    }

    #[test]
    fn only_draft_2020_12_schemas_are_embedded() -> Result<(), SchemaError> {
        for accepted in [
            json!({"type": "object"}),
            json!({"$schema": DRAFT_2020_12}),
            json!({"$schema": format!("{DRAFT_2020_12}#")}),
        ] {
            parse(&accepted)?.embedded_at("/$defs/p")?;
        }
        for refused in [
            "http://json-schema.org/draft-07/schema#",
            "https://json-schema.org/draft/2019-09/schema",
            "https://example.com/my-meta-schema",
        ] {
            assert!(matches!(
                parse(&json!({"$schema": refused}))?.embedded_at("/$defs/p"),
                Err(SchemaError::OtherDraft(_))
            ));
        }
        Ok(())
    }

    #[test]
    fn backtracking_patterns_are_refused_or_run_in_linear_time() -> Result<(), SchemaError> {
        // Look-around needs a backtracking engine: refused when the validator is built.
        let lookaround = parse(&json!({"type": "string", "pattern": "^(?=(a+)+$)b"}))?;
        assert!(matches!(
            lookaround.check(&json!("a"), LIMIT),
            Err(SchemaError::Invalid(_))
        ));
        // A catastrophic pattern for a backtracking engine is linear here.
        let nested = parse(&json!({"type": "string", "pattern": "^(a+)+$"}))?;
        let config = Value::String(format!("{}!", "a".repeat(100_000)));
        assert_eq!(nested.check(&config, LIMIT)?.len(), 1);
        Ok(())
    }

    #[test]
    fn violations_are_capped() -> Result<(), SchemaError> {
        let schema = parse(&json!({"type": "array", "items": {"type": "string"}}))?;
        let config = Value::Array((0..1000).map(Value::from).collect());
        assert_eq!(schema.check(&config, LIMIT)?.len(), MAX_VIOLATIONS);
        Ok(())
    }

    #[test]
    fn plugin_text_in_messages_is_escaped() -> Result<(), SchemaError> {
        let schema = parse(&json!({"enum": ["a\u{1b}[2J\nerror: fake"]}))?;
        let found = schema.check(&json!("b"), LIMIT)?;
        match &found[0].kind {
            ViolationKind::Other(message) => {
                assert!(!message.contains(['\u{1b}', '\n']), "{message}");
            }
            other => panic!("{other:?}"),
        }
        Ok(())
    }

    #[test]
    fn a_check_past_its_time_limit_is_abandoned() -> Result<(), SchemaError> {
        let schema = parse(&json!({"type": "array", "uniqueItems": true}))?;
        let config = Value::Array((0..1_000_000).map(Value::from).collect());
        assert_eq!(
            schema.check(&config, Duration::from_micros(1)),
            Err(SchemaError::Timeout(Duration::from_micros(1)))
        );
        Ok(())
    }
}
