//! `render -o DIR --check`: what a render would change in a folder, as unified diffs, writing
//! nothing. Secret values are masked on both sides, as `diff` masks them: a CI log shows which
//! keys of a Secret change, never their values.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};
use similar::TextDiff;

use super::{Format, OutputError, WRITTEN_LIST, yaml_document};

/// The differences between `files` (a render) and what `dir` holds: one unified diff per file
/// that would be written, created or removed; empty when the folder is up to date.
pub fn drift(
    dir: &Path,
    files: &BTreeMap<String, String>,
    format: Format,
) -> Result<Vec<String>, OutputError> {
    let mut diffs = Vec::new();
    for (name, rendered) in files {
        let committed = read(&dir.join(name))?;
        if committed.as_deref() != Some(rendered.as_str()) {
            diffs.push(file_diff(
                dir,
                name,
                committed.as_deref(),
                Some(rendered),
                format,
            ));
        }
    }
    // Files an earlier render wrote that this one would remove.
    let previous = read(&dir.join(WRITTEN_LIST))?.unwrap_or_default();
    for stale in previous
        .lines()
        .filter(|name| super::is_plain_name(name) && !files.contains_key(*name))
    {
        if let Some(committed) = read(&dir.join(stale))? {
            diffs.push(file_diff(dir, stale, Some(&committed), None, format));
        }
    }
    Ok(diffs)
}

fn read(path: &Path) -> Result<Option<String>, OutputError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(OutputError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The diff of one file, from what `dir` holds to what the render would write.
fn file_diff(
    dir: &Path,
    name: &str,
    committed: Option<&str>,
    rendered: Option<&str>,
    format: Format,
) -> String {
    let path = dir.join(name);
    let mut before = committed.map(|text| documents(text, format));
    let mut after = rendered.map(|text| documents(text, format));
    mask_secrets(
        before.as_mut().and_then(Option::as_mut),
        after.as_mut().and_then(Option::as_mut),
    );
    let shown = |side: &Option<Option<Vec<Value>>>| match side {
        None => String::new(),
        Some(Some(documents)) => text_of(documents, format),
        Some(None) => format!(
            "# {} is not {} this host can read; its content is not shown\n",
            path.display(),
            format.extension()
        ),
    };
    let (before_text, after_text) = (shown(&before), shown(&after));
    if before_text == after_text {
        return format!(
            "{} differs in layout only (comments, quoting, key order or masked Secret values \
             that are equal)\n",
            path.display()
        );
    }
    let label = |present: bool| {
        if present {
            path.display().to_string()
        } else {
            "/dev/null".to_string()
        }
    };
    TextDiff::from_lines(&before_text, &after_text)
        .unified_diff()
        .header(&label(committed.is_some()), &label(rendered.is_some()))
        .to_string()
}

/// The objects of a file, or `None` when it cannot be read as the format.
fn documents(text: &str, format: Format) -> Option<Vec<Value>> {
    match format {
        Format::Yaml => serde_yaml::Deserializer::from_str(text)
            .map(|document| Value::deserialize(document).ok())
            .filter(|document| !matches!(document, Some(Value::Null)))
            .collect(),
        Format::Json => serde_json::from_str::<Value>(text)
            .ok()?
            .get("items")?
            .as_array()
            .cloned(),
    }
}

fn text_of(documents: &[Value], format: Format) -> String {
    match format {
        Format::Yaml => documents
            .iter()
            .map(|document| format!("---\n{}", yaml_document(document).unwrap_or_default()))
            .collect(),
        Format::Json => {
            let list =
                json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": documents});
            format!(
                "{}\n",
                serde_json::to_string_pretty(&list).unwrap_or_default()
            )
        }
    }
}

/// Masks the values of every Secret on both sides. A Secret is paired with the one of the same
/// namespace and name on the other side, so that a key whose value changes shows as changed.
fn mask_secrets(before: Option<&mut Vec<Value>>, after: Option<&mut Vec<Value>>) {
    let identity = |o: &Value| {
        (
            o["metadata"]["namespace"].clone(),
            o["metadata"]["name"].clone(),
        )
    };
    let is_secret = |o: &Value| o["kind"] == "Secret";
    let mut no_after = Vec::new();
    let after = after.unwrap_or(&mut no_after);
    let mut paired = vec![false; after.len()];
    for object in before.into_iter().flatten().filter(|o| is_secret(o)) {
        let partner = after.iter().enumerate().position(|(index, other)| {
            !paired[index] && is_secret(other) && identity(other) == identity(object)
        });
        match partner {
            Some(index) => {
                paired[index] = true;
                super::mask_secret(object, &mut after[index]);
            }
            None => super::mask_secret(object, &mut Value::Null),
        }
    }
    for (object, _) in after
        .iter_mut()
        .zip(paired)
        .filter(|(object, paired)| !paired && is_secret(object))
    {
        super::mask_secret(&mut Value::Null, object);
    }
}
