//! Writes the ordered objects: one multi-document YAML stream or a `v1` `List`, to stdout or
//! as one file per plugin in a folder.

mod block;
pub mod check;
mod yaml11;

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value, json};

use crate::model::object::Placed;
use crate::untrusted;

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Multi-document YAML, ready for `kubectl apply -f -`.
    #[default]
    Yaml,
    /// A `v1` `List` in JSON.
    Json,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot serialise {object} as YAML")]
    Yaml {
        object: String,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{} exists but no earlier render wrote it (it is not listed in {WRITTEN_LIST}), so it \
         is left alone; move it, or render into another folder",
        path.display()
    )]
    NotOurs { file: String, path: PathBuf },
}

/// An object with `apiVersion`, `kind` and `metadata` first, then the rest in their order, as
/// kubectl shows objects (k8s-openapi serialises fields alphabetically, `data` before
/// `metadata`). Serialised in place: copying each object first was a tenth of a large render.
/// With `quotes`, strings are written as [`Quotes::token`] gives them.
struct Presented<'a>(&'a Value, Option<&'a Quotes<'a>>);

impl Serialize for Presented<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Presented(value, quotes) = *self;
        let Some(fields) = value.as_object() else {
            return Node(value, quotes).serialize(serializer);
        };
        let mut map = serializer.serialize_map(Some(fields.len()))?;
        for key in HEAD {
            if let Some(value) = fields.get(key) {
                map.serialize_entry(key, &Node(value, quotes))?;
            }
        }
        for (key, value) in fields {
            if !HEAD.contains(&key.as_str()) {
                map.serialize_entry(&token(key, quotes), &Node(value, quotes))?;
            }
        }
        map.end()
    }
}

/// The fields written first, in this order, as kubectl shows objects.
const HEAD: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// `body` with its fields in the order [`Presented`] writes them, for writers that embed
/// objects in a document of their own (a KRM `ResourceList`).
pub fn head_first(body: &Value) -> Value {
    let Some(fields) = body.as_object() else {
        return body.clone();
    };
    let head = HEAD.iter().filter_map(|key| fields.get_key_value(*key));
    let rest = fields
        .iter()
        .filter(|(key, _)| !HEAD.contains(&key.as_str()));
    Value::Object(
        head.chain(rest)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
    )
}

/// A value serialised as serde_json serialises it, but with every string, key or not, at any
/// depth, as [`token`] gives it.
struct Node<'a>(&'a Value, Option<&'a Quotes<'a>>);

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Node(value, quotes) = *self;
        if quotes.is_none() {
            return value.serialize(serializer);
        }
        match value {
            Value::String(text) => serializer.serialize_str(&token(text, quotes)),
            Value::Array(items) => serializer.collect_seq(items.iter().map(|v| Node(v, quotes))),
            Value::Object(fields) => serializer.collect_map(
                fields
                    .iter()
                    .map(|(k, v)| (token(k, quotes), Node(v, quotes))),
            ),
            other => other.serialize(serializer),
        }
    }
}

fn token<'a>(text: &'a str, quotes: Option<&Quotes<'a>>) -> Cow<'a, str> {
    match quotes {
        Some(quotes) if yaml11::reads_as_non_string(text) => Cow::Owned(quotes.token(text)),
        _ => Cow::Borrowed(text),
    }
}

/// serde_yaml 0.9 quotes only the strings a YAML 1.2 reader would take for something else: it
/// writes `off`, `yes`, `0755` or `1:20` plain, and kubectl (go-yaml v2) and PyYAML, which
/// read YAML 1.1, turn them into a boolean or a number. serde_yaml has no way to ask for a
/// quoted string, so such a string is serialised as a plain sentinel token that occurs nowhere
/// else in the text, which is then replaced by the single-quoted string. Everything else is
/// serde_yaml's own bytes.
struct Quotes<'a> {
    /// `mathisonq<n>x`, with the smallest `n` that no string of the object contains.
    prefix: String,
    /// The quoted strings; a token is the prefix and an index into this list.
    hits: RefCell<Vec<&'a str>>,
}

impl<'a> Quotes<'a> {
    fn for_object(body: &Value) -> Self {
        let prefix = (0u64..)
            .map(|n| format!("mathisonq{n}x"))
            .find(|prefix| !any_string(body, &mut |s| s.contains(prefix.as_str())))
            .unwrap_or_default();
        Quotes {
            prefix,
            hits: RefCell::new(Vec::new()),
        }
    }

    /// The token standing for `hit`: letters and digits, which serde_yaml writes plain as key
    /// and as value. Padded with `x` to the length of `hit`, so that the emitter decides as it
    /// would for `hit` whether a key is short enough (128 bytes) to be written as `key: value`.
    fn token(&self, hit: &'a str) -> String {
        let mut hits = self.hits.borrow_mut();
        let mut token = format!("{}{}", self.prefix, hits.len());
        hits.push(hit);
        let padding = hit.len().saturating_sub(token.len());
        token.extend(std::iter::repeat_n('x', padding));
        token
    }

    /// `text` with every token replaced by its string, single-quoted.
    fn restore(&self, text: &str) -> String {
        let hits = self.hits.borrow();
        let mut out = String::with_capacity(text.len() + 2 * hits.len());
        let mut rest = text;
        while let Some(at) = rest.find(&self.prefix) {
            out.push_str(&rest[..at]);
            rest = &rest[at + self.prefix.len()..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let hit = rest[..digits]
                .parse::<usize>()
                .ok()
                .and_then(|i| hits.get(i));
            rest = rest[digits..].trim_start_matches('x');
            // Every occurrence of the prefix is a token: no string of the object contains it.
            let hit = hit.copied().unwrap_or_default();
            out.push('\'');
            out.push_str(&hit.replace('\'', "''"));
            out.push('\'');
        }
        out.push_str(rest);
        out
    }
}

/// Whether `visit` holds for some string of `value`, key or not, at any depth.
fn any_string(value: &Value, visit: &mut impl FnMut(&str) -> bool) -> bool {
    match value {
        Value::String(text) => visit(text),
        Value::Array(items) => items.iter().any(|v| any_string(v, visit)),
        Value::Object(fields) => fields.iter().any(|(k, v)| visit(k) || any_string(v, visit)),
        _ => false,
    }
}

/// One object as a YAML document (without the leading `---`): written directly where every
/// scalar of it is one [`block`] writes, which is nearly always, and by serde_yaml otherwise,
/// with the same bytes either way.
pub fn yaml_document(body: &Value) -> Result<String, serde_yaml::Error> {
    match block::document(body) {
        Some(text) => Ok(text),
        None => yaml_document_by_serde_yaml(body),
    }
}

/// [`yaml_document`] by serde_yaml, with YAML 1.1's quoting.
fn yaml_document_by_serde_yaml(body: &Value) -> Result<String, serde_yaml::Error> {
    // Most objects have no string to quote: they are serialised exactly as before, in one pass.
    if !any_string(body, &mut yaml11::reads_as_non_string) {
        return serde_yaml::to_string(&Presented(body, None));
    }
    let quotes = Quotes::for_object(body);
    let text = serde_yaml::to_string(&Presented(body, Some(&quotes)))?;
    Ok(quotes.restore(&text))
}

/// Replaces each value of `data` and `stringData` with `***`, or `*** (before)` / `*** (after)`
/// where it changes, so a diff says which keys change without printing secrets.
pub fn mask_secret(live: &mut Value, merged: &mut Value) {
    for field in ["data", "stringData"] {
        let before = live.get(field).and_then(Value::as_object).cloned();
        let after = merged.get(field).and_then(Value::as_object).cloned();
        let masked = |own: &Map<String, Value>, other: Option<&Map<String, Value>>, tag: &str| {
            own.iter()
                .map(|(key, value)| {
                    let mask = if other.and_then(|o| o.get(key)) == Some(value) {
                        "***".to_string()
                    } else {
                        format!("*** ({tag})")
                    };
                    (key.clone(), Value::String(mask))
                })
                .collect::<Map<_, _>>()
        };
        if let Some(before_map) = &before {
            live[field] = Value::Object(masked(before_map, after.as_ref(), "before"));
        }
        if let Some(after_map) = &after {
            merged[field] = Value::Object(masked(after_map, before.as_ref(), "after"));
        }
    }
}

/// Serialises `objects` (already ordered) as one document.
pub fn to_string(objects: &[&Placed], format: Format) -> Result<String, OutputError> {
    match format {
        Format::Yaml => {
            let mut out = String::new();
            for object in objects {
                out.push_str("---\n");
                out.push_str(
                    &yaml_document(&object.body).map_err(|source| OutputError::Yaml {
                        object: object.id.to_string(),
                        source,
                    })?,
                );
            }
            Ok(out)
        }
        Format::Json => {
            let items: Vec<Presented<'_>> =
                objects.iter().map(|o| Presented(&o.body, None)).collect();
            let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items});
            // Serialising a Value cannot fail. Plugin strings may hold characters that act on
            // a terminal, which JSON may carry raw; escaped, the value is the same.
            let mut text = serde_json::to_string_pretty(&list).unwrap_or_default();
            if let Cow::Owned(escaped) = untrusted::escape_json(&text) {
                text = escaped;
            }
            text.push('\n');
            Ok(text)
        }
    }
}

/// The file that holds the objects of `origin` (a plugin's name, or the host's).
pub fn file_name(origin: &str, format: Format) -> String {
    format!("{origin}.{}", format.extension())
}

/// Groups `objects` by origin into `<origin>.<ext>` files, keeping their order.
pub fn files(objects: &[Placed], format: Format) -> Result<BTreeMap<String, String>, OutputError> {
    let mut by_origin: BTreeMap<&str, Vec<&Placed>> = BTreeMap::new();
    for object in objects {
        by_origin.entry(&object.origin).or_default().push(object);
    }
    by_origin
        .into_iter()
        .map(|(origin, objects)| Ok((file_name(origin, format), to_string(&objects, format)?)))
        .collect()
}

/// The list of files the last render wrote into a folder, so that the next render can remove
/// the files of plugins no longer rendered (which `kubectl apply -f DIR` would still apply)
/// without ever touching files it did not write.
pub const WRITTEN_LIST: &str = ".mathison-host-files";

/// Whether a name from the written-files list is a plain file name: a hand-edited list cannot
/// reach outside the folder.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['/', '\\']) && !name.starts_with('.')
}

/// Writes `files` into `dir`, all or nothing as far as the file system allows: every file is
/// first written and synced under a temporary name, and only then are they renamed into place.
/// Files the previous render wrote and this one does not are removed; other files are left alone,
/// and a file this render would write that the previous one did not is an error, so that a
/// plugin named like a file the user keeps there cannot replace it.
pub fn write_dir(
    dir: &Path,
    files: &BTreeMap<String, String>,
) -> Result<Vec<PathBuf>, OutputError> {
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |source| OutputError::Write { path, source }
    };
    fs::create_dir_all(dir).map_err(write_error(dir))?;
    let previous = fs::read_to_string(dir.join(WRITTEN_LIST)).unwrap_or_default();
    let ours: BTreeSet<&str> = previous.lines().collect();
    // Before anything is written: a file this render would replace must be one it wrote.
    for name in files.keys() {
        let path = dir.join(name);
        if !ours.contains(name.as_str()) && fs::symlink_metadata(&path).is_ok() {
            return Err(OutputError::NotOurs {
                file: name.clone(),
                path,
            });
        }
    }
    let list: String = files.keys().map(|name| format!("{name}\n")).collect();

    let mut staged = Vec::with_capacity(files.len() + 1);
    for (name, contents) in files.iter().chain([(&WRITTEN_LIST.to_string(), &list)]) {
        let target = dir.join(name);
        let mut temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .tempfile_in(dir)
            .map_err(write_error(&target))?;
        temp.write_all(contents.as_bytes())
            .and_then(|()| temp.as_file().sync_all())
            .map_err(write_error(&target))?;
        staged.push((temp, target));
    }
    // Dropping `staged` on an error above removes every temporary file.
    let mut written = Vec::with_capacity(staged.len());
    for (temp, target) in staged {
        temp.persist(&target).map_err(|e| OutputError::Write {
            path: target.clone(),
            source: e.error,
        })?;
        written.push(target);
    }
    // Only plain names from our own list: a hand-edited list cannot reach outside `dir`.
    for stale in previous
        .lines()
        .filter(|name| is_plain_name(name) && !files.contains_key(*name))
    {
        let path = dir.join(stale);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(OutputError::Write { path, source: e });
            }
            _ => {}
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::Map;
    use yaml_rust2::parser::{Event, Parser};
    use yaml_rust2::scanner::TScalarStyle;

    use super::*;
    use crate::model::object::testing;

    /// Every spelling of yaml.org/type (bool, null, int, float, timestamp, merge, value) in its
    /// case variants, plus what go-yaml v2 reads beyond PyYAML.
    #[rustfmt::skip]
    const YAML11_SPELLINGS: &[&str] = &[
        // bool
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE",
        "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        // null
        "", "~", "null", "Null", "NULL",
        // int
        "0b1010", "-0b1010", "+0b1_0", "0b_", "0755", "-0755", "0_7", "0", "-0", "+12", "1_000",
        "0x1F", "0xff_ff", "-0x_1f", "1:20", "190:20:30", "-1:20", "+1_0:59",
        // float
        "1.5", "1_000.5", "-1.5e+3", "1.0e-3", "1.", ".5", "-.5", "1:20.5", "190:20:30.15",
        ".inf", ".Inf", ".INF", "-.inf", "-.Inf", "-.INF", "+.inf", ".nan", ".NaN", ".NAN",
        // go-yaml v2 beyond PyYAML
        "0B101", "0X1F", "0o17", "0O17", "0_8", "-_1", "1_0e5", "1e5",
        // timestamp
        "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14T21:59:43.10Z",
        "2001-12-14 21:59:43.10 -5", "2001-12-15 2:59:43.10", "2001-12-14\t21:59:43Z", "2001-1-2",
        // merge, value
        "<<", "=",
    ];

    /// Near misses that every YAML 1.1 reader takes for strings.
    #[rustfmt::skip]
    const PLAIN_STRINGS: &[&str] = &[
        "mathison", "yess", "offline", "Of", "oN", "nULL", "0b", "0x", "0b2", "0x1G", "12a",
        "512Mi", "100m", "16-alpine", "1.2.3", "0.1.0", "1:60", "1:2:", "2001-12-14x", "2001-12",
        "20011-12-14", "2001-12-14T", "2001-12-14 21:59", "<<<", "==", "~~", "-", "+", "_1", "e5",
        "postgresql://u@h:5432/db", "allkeys-lru",
    ];

    fn config_map(data: Map<String, Value>) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "strings"}, "data": data})
    }

    /// The document as serde_yaml writes it, as the host did before it quoted YAML 1.1 strings.
    fn serde_yaml_alone(body: &Value) -> String {
        serde_yaml::to_string(&Presented(body, None)).unwrap()
    }

    /// The plain scalars of a YAML text, as a YAML 1.2 parser reports them.
    fn plain_scalars(text: &str) -> Vec<String> {
        let mut parser = Parser::new_from_str(text);
        let mut plain = Vec::new();
        while let Ok((event, _)) = parser.next_token() {
            match event {
                Event::StreamEnd => break,
                Event::Scalar(value, TScalarStyle::Plain, ..) => plain.push(value),
                _ => {}
            }
        }
        plain
    }

    #[test]
    fn yaml11_spellings_are_single_quoted_as_keys_and_values() {
        for &text in YAML11_SPELLINGS {
            assert!(yaml11::reads_as_non_string(text), "{text:?}");
            let body = config_map(Map::from_iter([(text.to_owned(), json!(text))]));
            let yaml = yaml_document(&body).unwrap();
            let quoted = format!("'{text}'");
            assert!(
                yaml.contains(&format!("  {quoted}: {quoted}\n")),
                "{text:?} is not quoted in\n{yaml}"
            );
            assert_eq!(
                serde_yaml::from_str::<Value>(&yaml).ok(),
                Some(body),
                "{yaml}"
            );
        }
    }

    #[test]
    fn strings_no_reader_retypes_are_written_as_before() {
        for &text in PLAIN_STRINGS {
            assert!(!yaml11::reads_as_non_string(text), "{text:?}");
            let body = config_map(Map::from_iter([(text.to_owned(), json!(text))]));
            assert_eq!(yaml_document(&body).ok(), Some(serde_yaml_alone(&body)));
        }
    }

    #[test]
    fn quoting_reaches_every_depth_and_keeps_the_head_first() {
        let body = json!({
            "spec": {"args": ["on", ["0755"], {"1:20": "2001-12-14"}]},
            "data": {"off": "yes"},
            "metadata": {"name": "strings", "labels": {"y": "n"}},
            "kind": "ConfigMap",
            "apiVersion": "v1",
        });
        let yaml = yaml_document(&body).unwrap();
        assert_eq!(
            yaml,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: strings\n  labels:\n    'y': 'n'\n\
             spec:\n  args:\n  - 'on'\n  - - '0755'\n  - '1:20': '2001-12-14'\ndata:\n  'off': 'yes'\n"
        );
        assert_eq!(serde_yaml::from_str::<Value>(&yaml).ok(), Some(body));
    }

    #[test]
    fn sentinels_never_meet_the_objects_own_strings() {
        // The object's strings contain the first candidate prefixes: the tokens must use another.
        let body = config_map(Map::from_iter([
            ("mathisonq0x0".to_owned(), json!("off")),
            ("on".to_owned(), json!("mathisonq1x1xx")),
        ]));
        let yaml = yaml_document_by_serde_yaml(&body).unwrap();
        assert!(
            yaml.contains("  mathisonq0x0: 'off'\n  'on': mathisonq1x1xx\n"),
            "{yaml}"
        );
        assert_eq!(serde_yaml::from_str::<Value>(&yaml).ok(), Some(body));
    }

    #[test]
    fn long_keys_are_written_as_the_emitter_writes_long_keys() {
        // Past 128 bytes libyaml writes a key as `? key`; the token must not hide the length.
        let long = format!("0b{}", "1".repeat(200));
        let body = config_map(Map::from_iter([(long.clone(), json!("v"))]));
        let yaml = yaml_document_by_serde_yaml(&body).unwrap();
        assert!(yaml.contains(&format!("  ? '{long}'\n  : v\n")), "{yaml}");
        assert_eq!(serde_yaml::from_str::<Value>(&yaml).ok(), Some(body));
    }

    /// Strings from the patterns of yaml.org/type (as PyYAML compiles them) and go-yaml v2.
    fn yaml11_string() -> impl Strategy<Value = String> {
        const PATTERNS: &[&str] = &[
            "[-+]?0[bB][0-1_]{1,8}",
            "[-+]?0[0-7_]{1,8}",
            "[-+]?(0|[1-9][0-9_]{0,8})",
            "[-+]?0[xX][0-9a-fA-F_]{1,8}",
            "[-+]?0[oO][0-7]{1,8}",
            "[-+]?[1-9][0-9_]{0,3}(:[0-5]?[0-9]){1,3}",
            "[-+]?[0-9][0-9_]{0,4}\\.[0-9_]{0,4}([eE][-+][0-9]{1,3})?",
            "\\.[0-9][0-9_]{0,4}([eE][-+][0-9]{1,3})?",
            "[-+]?[0-9][0-9_]{0,3}(:[0-5]?[0-9]){1,3}\\.[0-9_]{0,3}",
            "[-+]?\\.(inf|Inf|INF)",
            "\\.(nan|NaN|NAN)",
            "[0-9]{4}-[0-9]{2}-[0-9]{2}",
            "[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt]|[ \t]{1,2})[0-9]{1,2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,4})?([ \t]{0,2}(Z|[-+][0-9]{1,2}(:[0-9]{2})?))?",
        ];
        prop_oneof![
            prop::sample::select(YAML11_SPELLINGS).prop_map(str::to_owned),
            prop::sample::select(PATTERNS).prop_flat_map(|pattern| pattern),
        ]
    }

    /// Any string, near misses, and strings a YAML 1.1 reader retypes.
    fn some_string() -> impl Strategy<Value = String> {
        prop_oneof![
            yaml11_string(),
            any::<String>(),
            "[-+.:_ 0-9a-fxobTZ]{0,10}",
            prop::sample::select(PLAIN_STRINGS).prop_map(str::to_owned),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn yaml11_patterns_are_recognised(text in yaml11_string()) {
            prop_assert!(yaml11::reads_as_non_string(&text), "{:?}", text);
        }

        #[test]
        fn config_map_strings_read_back_as_the_same_strings(
            data in prop::collection::vec((some_string(), some_string()), 0..8),
        ) {
            let body = config_map(data.into_iter().map(|(k, v)| (k, json!(v))).collect());
            let yaml = yaml_document(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&yaml, &yaml_document_by_serde_yaml(&body).unwrap());
            prop_assert_eq!(serde_yaml::from_str::<Value>(&yaml).ok(), Some(body.clone()));
            for plain in plain_scalars(&yaml) {
                prop_assert!(!yaml11::reads_as_non_string(&plain), "{:?} is plain in\n{}", plain, yaml);
            }
            // Each one-line entry without a YAML 1.1 reading is written as serde_yaml writes
            // it. (The continuation lines of a string with line breaks, which include U+2028 to
            // libyaml, are indented by depth, so the entry alone would differ.)
            let one_line = |s: &str| !s.contains(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']);
            for (key, value) in body["data"].as_object().into_iter().flatten() {
                let value = value.as_str().unwrap_or_default();
                if [key.as_str(), value].iter().all(|s| one_line(s) && !yaml11::reads_as_non_string(s)) {
                    let entry = serde_yaml::to_string(&json!({key: value})).unwrap();
                    let indented: String = entry.lines().map(|line| format!("  {line}\n")).collect();
                    prop_assert!(yaml.contains(&indented), "{:?} lacks\n{}", yaml, indented);
                }
            }
            if !any_string(&body, &mut yaml11::reads_as_non_string) {
                prop_assert_eq!(yaml, serde_yaml_alone(&body));
            }
        }
    }

    fn placed(origin: &str, name: &str) -> Placed {
        testing::placed(
            origin,
            "ConfigMap",
            name,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"init.sql": "CREATE EXTENSION IF NOT EXISTS vector;\nSELECT 1;\n"}}),
        )
    }

    #[test]
    fn yaml_is_a_multi_document_stream() {
        let objects = [placed("p", "a"), placed("p", "b")];
        let text = to_string(&objects.iter().collect::<Vec<_>>(), Format::Yaml).unwrap();
        assert_eq!(text.matches("---\n").count(), 2);
        let docs: Vec<Value> = text
            .split("---\n")
            .filter(|d| !d.is_empty())
            .map(|d| serde_yaml::from_str(d).unwrap_or(Value::Null))
            .collect();
        assert_eq!(docs, vec![objects[0].body.clone(), objects[1].body.clone()]);
    }

    #[test]
    fn json_is_a_v1_list() {
        let objects = [placed("p", "a")];
        let text = to_string(&objects.iter().collect::<Vec<_>>(), Format::Json).unwrap();
        let list: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(list["kind"], "List");
        assert_eq!(list["items"][0], objects[0].body);
    }

    #[test]
    fn files_group_by_origin() {
        let objects = [
            placed("redis", "a"),
            placed("postgres", "b"),
            placed("redis", "c"),
        ];
        let files = files(&objects, Format::Yaml).unwrap();
        assert_eq!(
            files.keys().collect::<Vec<_>>(),
            ["postgres.yaml", "redis.yaml"]
        );
        assert_eq!(files["redis.yaml"].matches("---").count(), 2);
    }

    #[test]
    fn write_dir_never_replaces_a_file_it_did_not_write() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        fs::write(dir.path().join("kustomization.yaml"), "resources: []\n")?;
        let files = BTreeMap::from([
            (
                "kustomization.yaml".to_string(),
                "kind: ConfigMap\n".to_string(),
            ),
            ("redis.yaml".to_string(), "new\n".to_string()),
        ]);
        assert!(matches!(
            write_dir(dir.path(), &files),
            Err(OutputError::NotOurs { file, .. }) if file == "kustomization.yaml"
        ));
        assert_eq!(
            fs::read_to_string(dir.path().join("kustomization.yaml"))?,
            "resources: []\n"
        );
        assert_eq!(fs::read_dir(dir.path())?.count(), 1, "nothing was written");
        Ok(())
    }

    #[test]
    fn write_dir_replaces_only_its_files() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        fs::write(dir.path().join("kustomization.yaml"), "resources: []\n")?;
        let files = BTreeMap::from([("redis.yaml".to_string(), "old\n".to_string())]);
        write_dir(dir.path(), &files)?;
        let files = BTreeMap::from([("redis.yaml".to_string(), "new\n".to_string())]);
        write_dir(dir.path(), &files)?;
        assert_eq!(fs::read_to_string(dir.path().join("redis.yaml"))?, "new\n");
        assert_eq!(
            fs::read_to_string(dir.path().join("kustomization.yaml"))?,
            "resources: []\n"
        );
        assert_eq!(
            fs::read_dir(dir.path())?.count(),
            3,
            "the two files and the list; no temporary files left behind"
        );
        Ok(())
    }

    #[test]
    fn write_dir_removes_only_files_it_wrote_before() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        fs::write(dir.path().join("kustomization.yaml"), "resources: []\n")?;
        let both = BTreeMap::from([
            ("postgres.yaml".to_string(), "pg\n".to_string()),
            ("redis.yaml".to_string(), "redis\n".to_string()),
        ]);
        write_dir(dir.path(), &both)?;
        let postgres_only = BTreeMap::from([("postgres.yaml".to_string(), "pg\n".to_string())]);
        write_dir(dir.path(), &postgres_only)?;
        assert!(
            !dir.path().join("redis.yaml").exists(),
            "redis is no longer rendered"
        );
        assert!(
            dir.path().join("kustomization.yaml").exists(),
            "not ours: kept"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join(WRITTEN_LIST))?,
            "postgres.yaml\n"
        );
        Ok(())
    }
}
