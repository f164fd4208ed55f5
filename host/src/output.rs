//! Writes the ordered objects: one multi-document YAML stream or a `v1` `List`, to stdout or
//! as one file per plugin in a folder.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value, json};

use crate::merge::Placed;

/// The output format (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Multi-document YAML, ready for `kubectl apply -f -`.
    #[default]
    Yaml,
    /// A `v1` `List` in JSON.
    Json,
}

impl Format {
    fn extension(self) -> &'static str {
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
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// An object with `apiVersion`, `kind` and `metadata` first, then the rest in their order, as
/// kubectl shows objects (k8s-openapi serialises fields alphabetically, `data` before
/// `metadata`). Serialised in place: copying each object first was a tenth of a large render.
struct Presented<'a>(&'a Value);

impl Serialize for Presented<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Some(fields) = self.0.as_object() else {
            return self.0.serialize(serializer);
        };
        const HEAD: [&str; 3] = ["apiVersion", "kind", "metadata"];
        let mut map = serializer.serialize_map(Some(fields.len()))?;
        for key in HEAD {
            if let Some(value) = fields.get(key) {
                map.serialize_entry(key, value)?;
            }
        }
        for (key, value) in fields {
            if !HEAD.contains(&key.as_str()) {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

/// Serialises `objects` (already ordered) as one document.
pub fn to_string(objects: &[&Placed], format: Format) -> Result<String, OutputError> {
    match format {
        Format::Yaml => {
            let mut out = String::new();
            for object in objects {
                out.push_str("---\n");
                out.push_str(&serde_yaml::to_string(&Presented(&object.body)).map_err(
                    |source| OutputError::Yaml {
                        object: object.id.to_string(),
                        source,
                    },
                )?);
            }
            Ok(out)
        }
        Format::Json => {
            let items: Vec<Presented<'_>> = objects.iter().map(|o| Presented(&o.body)).collect();
            let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items});
            // Serialising a Value cannot fail.
            let mut text = serde_json::to_string_pretty(&list).unwrap_or_default();
            text.push('\n');
            Ok(text)
        }
    }
}

/// Groups `objects` by origin into `<origin>.<ext>` files, keeping their order.
pub fn files(objects: &[Placed], format: Format) -> Result<BTreeMap<String, String>, OutputError> {
    let mut by_origin: BTreeMap<&str, Vec<&Placed>> = BTreeMap::new();
    for object in objects {
        by_origin.entry(&object.origin).or_default().push(object);
    }
    by_origin
        .into_iter()
        .map(|(origin, objects)| {
            Ok((
                format!("{origin}.{}", format.extension()),
                to_string(&objects, format)?,
            ))
        })
        .collect()
}

/// The list of files the last render wrote into a folder, so that the next render can remove
/// the files of plugins no longer rendered (which `kubectl apply -f DIR` would still apply)
/// without ever touching files it did not write.
pub const WRITTEN_LIST: &str = ".mathison-host-files";

/// Writes `files` into `dir`, all or nothing as far as the file system allows: every file is
/// first written and synced under a temporary name, and only then are they renamed into place.
/// Files the previous render wrote and this one does not are removed; other files are left alone.
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
    for stale in previous.lines().filter(|name| {
        !files.contains_key(*name)
            && !name.is_empty()
            && !name.contains(['/', '\\'])
            && !name.starts_with('.')
    }) {
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
    use super::*;
    use crate::decode::ObjectId;

    fn placed(origin: &str, name: &str) -> Placed {
        Placed {
            origin: origin.into(),
            id: ObjectId {
                group: String::new(),
                kind: "ConfigMap".into(),
                namespace: None,
                name: name.into(),
            },
            body: json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"init.sql": "CREATE EXTENSION IF NOT EXISTS vector;\nSELECT 1;\n"}}),
        }
    }

    #[test]
    fn yaml_is_a_multi_document_stream() {
        let objects = [placed("p", "a"), placed("p", "b")];
        let text = to_string(&objects.iter().collect::<Vec<_>>(), Format::Yaml).unwrap_or_default();
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
        let text = to_string(&objects.iter().collect::<Vec<_>>(), Format::Json).unwrap_or_default();
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
        let files = files(&objects, Format::Yaml).unwrap_or_default();
        assert_eq!(
            files.keys().collect::<Vec<_>>(),
            ["postgres.yaml", "redis.yaml"]
        );
        assert_eq!(files["redis.yaml"].matches("---").count(), 2);
    }

    #[test]
    fn write_dir_replaces_only_its_files() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        fs::write(dir.path().join("kustomization.yaml"), "resources: []\n")?;
        fs::write(dir.path().join("redis.yaml"), "old\n")?;
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
