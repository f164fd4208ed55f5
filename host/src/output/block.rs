//! A direct YAML writer for the documents manifests are made of, writing exactly the bytes
//! that serde_yaml's emitter (libyaml: block style, two-space indent, sequences in mappings not
//! indented, no line folding) writes with the host's YAML 1.1 quoting ([`super::Quotes`]), at a
//! fraction of the cost: libyaml's event-driven emitter was a quarter of a render that missed
//! the memo, and most of a 1000-object one.
//!
//! It writes only the scalars whose style it decides exactly as libyaml would: printable ASCII
//! on one line (plain, or single-quoted where plain would read as something else or is not
//! allowed), and multi-line strings libyaml writes as a literal block with no indentation or
//! keep hint (`|` or `|-`). For anything else (a tab, a control or non-ASCII character, a
//! multi-line string that starts with a space or ends in blank lines, a key longer than
//! libyaml's simple keys) it gives up, and the document is serialised by serde_yaml; the tests
//! compare both writers on the golden manifests and on generated documents.

use std::fmt::Write as _;

use serde_json::Value;

use super::{HEAD, yaml11};

const INDENT: usize = 2;
/// libyaml writes a longer key as a complex key (`? key`), which this writer does not.
const MAX_SIMPLE_KEY: usize = 128;

/// An object as a YAML document, with `apiVersion`, `kind` and `metadata` first; `None` when
/// some scalar of it is not one this writer writes (see the module's documentation).
pub(super) fn document(body: &Value) -> Option<String> {
    let fields = body.as_object().filter(|fields| !fields.is_empty())?;
    let mut out = String::with_capacity(1024);
    let head = HEAD.iter().filter_map(|key| fields.get_key_value(*key));
    let rest = fields
        .iter()
        .filter(|(key, _)| !HEAD.contains(&key.as_str()));
    write_entries(&mut out, head.chain(rest), 0, false)?;
    Some(out)
}

/// A mapping's entries, each key at column `indent`, the first one after what is already on
/// the line when `inline` (a mapping that is a sequence's item: `- key: value`).
fn write_entries<'a>(
    out: &mut String,
    entries: impl Iterator<Item = (&'a String, &'a Value)>,
    indent: usize,
    inline: bool,
) -> Option<()> {
    for (index, (key, value)) in entries.enumerate() {
        if index > 0 || !inline {
            pad(out, indent);
        }
        write_string(out, key, None)?;
        out.push(':');
        write_value(out, value, indent, true)?;
    }
    Some(())
}

/// A sequence's items, each dash at column `indent`, the first one after what is already on
/// the line when `inline` (a sequence that is a sequence's item: `- - a`).
fn write_items(out: &mut String, items: &[Value], indent: usize, inline: bool) -> Option<()> {
    for (index, item) in items.iter().enumerate() {
        if index > 0 || !inline {
            pad(out, indent);
        }
        out.push('-');
        write_value(out, item, indent, false)?;
    }
    Some(())
}

/// What follows a key's colon (`of_key`) or an item's dash at column `indent`, to the end of
/// its last line.
fn write_value(out: &mut String, value: &Value, indent: usize, of_key: bool) -> Option<()> {
    match value {
        Value::Object(fields) if fields.is_empty() => out.push_str(" {}\n"),
        Value::Array(items) if items.is_empty() => out.push_str(" []\n"),
        Value::Object(fields) if of_key => {
            out.push('\n');
            write_entries(out, fields.iter(), indent + INDENT, false)?;
        }
        Value::Object(fields) => {
            out.push(' ');
            write_entries(out, fields.iter(), indent + INDENT, true)?;
        }
        // A sequence under a key is not indented: its dashes line up with the key.
        Value::Array(items) if of_key => {
            out.push('\n');
            write_items(out, items, indent, false)?;
        }
        Value::Array(items) => {
            out.push(' ');
            write_items(out, items, indent + INDENT, true)?;
        }
        Value::String(text) => {
            out.push(' ');
            write_string(out, text, Some(indent + INDENT))?;
            out.push('\n');
        }
        Value::Null => out.push_str(" null\n"),
        Value::Bool(true) => out.push_str(" true\n"),
        Value::Bool(false) => out.push_str(" false\n"),
        Value::Number(number) => {
            out.push(' ');
            match number.as_f64() {
                Some(float) if number.is_f64() => {
                    out.push_str(ryu::Buffer::new().format_finite(float));
                }
                // An integer is written as serde_yaml writes one: its decimal digits.
                _ => write!(out, "{number}").ok()?,
            }
            out.push('\n');
        }
    }
    Some(())
}

/// A string as a key (`block_indent` is `None`) or as a value whose literal block, if it is
/// one, is indented to `block_indent`.
fn write_string(out: &mut String, text: &str, block_indent: Option<usize>) -> Option<()> {
    if block_indent.is_none() && text.len() > MAX_SIMPLE_KEY {
        return None;
    }
    // The host's own rule, before libyaml's: what a YAML 1.1 reader would not read as this
    // string is single-quoted (see `Quotes`).
    if yaml11::reads_as_non_string(text) {
        single_quoted(out, text);
        return Some(());
    }
    if text.contains('\n') {
        return literal(out, text, block_indent?);
    }
    if !text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return None;
    }
    if plain_allowed(text) && !reads_as_non_string_yaml12(text) {
        out.push_str(text);
    } else {
        single_quoted(out, text);
    }
    Some(())
}

fn single_quoted(out: &mut String, text: &str) {
    out.push('\'');
    for (index, part) in text.split('\'').enumerate() {
        if index > 0 {
            out.push_str("''");
        }
        out.push_str(part);
    }
    out.push('\'');
}

/// A multi-line string as libyaml writes it: `|` (clip: one final line break) or `|-` (strip:
/// none), then each line at `indent`, empty lines empty. The strings that would need an
/// indentation or keep (`|+`) hint, or that libyaml double-quotes, are left to serde_yaml.
fn literal(out: &mut String, text: &str, indent: usize) -> Option<()> {
    let printable = text
        .bytes()
        .all(|b| b == b'\n' || (b' '..=b'~').contains(&b));
    let hinted = text.starts_with([' ', '\n']) || text.ends_with("\n\n");
    // libyaml's `space_break` and `trailing_space` rule out a block scalar.
    let blocked = text.contains(" \n") || text.ends_with(' ');
    if !printable || hinted || blocked {
        return None;
    }
    let body = match text.strip_suffix('\n') {
        Some(body) => {
            out.push('|');
            body
        }
        None => {
            out.push_str("|-");
            text
        }
    };
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            pad(out, indent);
            out.push_str(line);
        }
    }
    Some(())
}

/// Whether libyaml's scalar analysis allows a one-line printable ASCII string plain in block
/// context: no leading or trailing space, no indicator where it would start a YAML construct
/// (`: ` or ` #` anywhere, most punctuation first), not a document marker.
fn plain_allowed(text: &str) -> bool {
    let bytes = text.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if first == b' ' || last == b' ' || text.starts_with("---") || text.starts_with("...") {
        return false;
    }
    let blank_after = |index: usize| bytes.get(index + 1).is_none_or(|&b| b == b' ');
    if b"#,[]{}&*!|>'\"%@`".contains(&first)
        || (matches!(first, b'?' | b':' | b'-') && blank_after(0))
    {
        return false;
    }
    !bytes.iter().enumerate().skip(1).any(|(index, &b)| {
        (b == b':' && blank_after(index)) || (b == b'#' && bytes[index - 1] == b' ')
    })
}

/// Whether serde_yaml's reader resolves `text`, written plain, as something else than a string
/// (null, a boolean, an integer or a float in YAML 1.2's core schema), which its writer then
/// single-quotes; its resolver (`serde_yaml::de::visit_untagged_scalar`), step by step.
fn reads_as_non_string_yaml12(text: &str) -> bool {
    matches!(
        text,
        "" | "~"
            | "null"
            | "Null"
            | "NULL"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
    ) || digits_but_not_number(text)
        || unsigned_int(text)
        || negative_int(text)
        || float(text)
}

/// A leading zero followed by digits: a string to YAML 1.2, quoted so that 1.1 does not read
/// it as octal.
fn digits_but_not_number(text: &str) -> bool {
    let text = text.strip_prefix(['-', '+']).unwrap_or(text);
    text.len() > 1 && text.starts_with('0') && text[1..].bytes().all(|b| b.is_ascii_digit())
}

fn radix_digits(text: &str) -> Option<(&str, u32)> {
    [("0x", 16), ("0o", 8), ("0b", 2)]
        .into_iter()
        .find_map(|(prefix, radix)| Some((text.strip_prefix(prefix)?, radix)))
}

fn unsigned_int(text: &str) -> bool {
    let unpositive = text.strip_prefix('+').unwrap_or(text);
    if let Some((digits, radix)) = radix_digits(unpositive) {
        if digits.starts_with(['+', '-']) {
            return false;
        }
        if u128::from_str_radix(digits, radix).is_ok() {
            return true;
        }
    }
    !unpositive.starts_with(['+', '-'])
        && !digits_but_not_number(text)
        && unpositive.parse::<u128>().is_ok()
}

fn negative_int(text: &str) -> bool {
    if let Some((digits, radix)) = text.strip_prefix('-').and_then(radix_digits)
        && i128::from_str_radix(&format!("-{digits}"), radix).is_ok()
    {
        return true;
    }
    !digits_but_not_number(text) && text.parse::<i128>().is_ok()
}

fn float(text: &str) -> bool {
    if digits_but_not_number(text) {
        return false;
    }
    let unpositive = match text.strip_prefix('+') {
        Some(rest) if rest.starts_with(['+', '-']) => return false,
        Some(rest) => rest,
        None => text,
    };
    matches!(unpositive, ".inf" | ".Inf" | ".INF")
        || matches!(text, "-.inf" | "-.Inf" | "-.INF" | ".nan" | ".NaN" | ".NAN")
        || unpositive.parse::<f64>().is_ok_and(f64::is_finite)
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;
    use serde::Deserialize;
    use serde_json::{Map, Number, json};

    use super::*;
    use crate::output::yaml_document_by_serde_yaml;

    /// Every document of the golden manifests, read back.
    fn golden_documents() -> Vec<(String, Value)> {
        let mut documents = Vec::new();
        let mut folders = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden")];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).expect("the golden folder") {
                let path = entry.expect("a golden entry").path();
                if path.is_dir() {
                    folders.push(path);
                } else if path.extension().is_some_and(|e| e == "yaml") {
                    let text = std::fs::read_to_string(&path).expect("a golden file");
                    for document in serde_yaml::Deserializer::from_str(&text) {
                        let value = Value::deserialize(document).expect("a golden document");
                        documents.push((path.display().to_string(), value));
                    }
                }
            }
        }
        documents
    }

    #[test]
    fn the_golden_manifests_are_written_directly_with_serde_yamls_bytes() {
        let documents = golden_documents();
        assert!(documents.len() > 50, "{} documents", documents.len());
        for (file, body) in documents.iter().filter(|(_, d)| d.is_object()) {
            let direct = document(body);
            assert!(direct.is_some(), "{file}: not written directly:\n{body:#}");
            assert_eq!(
                direct.unwrap_or_default(),
                yaml_document_by_serde_yaml(body).expect("serde_yaml"),
                "{file}"
            );
        }
    }

    #[test]
    fn scalars_are_written_in_each_style_libyaml_would_pick() {
        let body = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "data": {
                "plain": "a b-c:d#e", "number": "5432", "octal": "0755", "hex": "0x1f",
                "float": "1e5", "inf": "inf", "indicator": "[ a ]", "comment": "a #b",
                "colon": "a: b", "dash": "- a", "marker": "--- a", "quote": "it's",
                "block": "line\n\n  indented\n", "strip": "a\nb",
                "empty": "", "null": null, "bool": true, "int": -3, "real": 0.25,
                "list": [[], {}, ["x", {"k": "v", "l": "w\n"}], [["y"]]],
            },
        });
        let direct = document(&body).expect("written directly");
        assert_eq!(
            direct,
            yaml_document_by_serde_yaml(&body).expect("serde_yaml")
        );
        assert!(direct.contains("\n  indicator: '[ a ]'\n"), "{direct}");
        assert!(
            direct.contains("\n  block: |\n    line\n\n      indented\n"),
            "{direct}"
        );
    }

    #[test]
    fn what_libyaml_would_write_otherwise_is_left_to_serde_yaml() {
        for text in [
            "tab\there",
            "é",
            " leading\nline",
            "kept\n\n",
            "trailing \nspace",
            "carriage\rreturn",
        ] {
            let body = json!({"data": {"key": text}});
            assert_eq!(document(&body), None, "{text:?}");
        }
        let long_key = "k".repeat(MAX_SIMPLE_KEY + 1);
        assert_eq!(document(&json!({ long_key: 1 })), None);
        assert!(document(&json!({ "k".repeat(MAX_SIMPLE_KEY): 1 })).is_some());
    }

    /// Strings near every rule of libyaml's analysis and of both resolvers.
    fn tricky_string() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9 :#'\"\\-.\\[\\]{},?|>~*&!%@`=<_+]{0,10}",
            "[-+.0-9a-fxobeEinfINFaA_]{1,8}",
            "[a-z #:'-]{0,6}(\n[a-z #:'-]{0,6}){1,3}\n{0,2}",
            "[a-z][a-z #:'-]{0,6}(\n[a-z #:'-]{0,6}){1,3}\n?",
            prop::sample::select(vec![
                "true",
                "False",
                "NULL",
                "~",
                "y",
                "off",
                "0",
                "-0",
                "+1",
                "0x1F",
                "-0x1f",
                "0o17",
                "+0b101",
                "1_000",
                "1.5e+3",
                "inf",
                "-.inf",
                ".NaN",
                "nan",
                "Infinity",
                "---",
                "...",
                "- ",
                "? x",
                ": y",
                "a:",
                "a: ",
                "#",
                "x #y",
                "007",
                "+007",
                "2001-12-14",
                "1:20",
                "<<",
                "=",
            ])
            .prop_map(str::to_owned),
        ]
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
            tricky_string().prop_map(Value::String),
        ]
    }

    fn node() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(4, 48, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((tricky_string(), inner), 0..4)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn documents_written_directly_are_serde_yamls_bytes(
            entries in prop::collection::vec((tricky_string(), node()), 1..6),
        ) {
            let body = Value::Object(entries.into_iter().collect());
            if let Some(direct) = document(&body) {
                prop_assert_eq!(direct, yaml_document_by_serde_yaml(&body).unwrap());
            }
        }
    }
}
