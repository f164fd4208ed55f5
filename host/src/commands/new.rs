//! `mathison-host new`: create a plugin project from the templates in `plugins/template/`, with
//! a copy of the SDK it builds against.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;

use crate::model::k8s::is_dns_label;

/// (path in the new project, template). `{{...}}` placeholders are filled in by [`fill`].
const TEMPLATES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../plugins/template/Cargo.toml.tmpl"),
    ),
    (
        ".cargo/config.toml",
        include_str!("../../../plugins/template/.cargo/config.toml"),
    ),
    (
        ".gitignore",
        include_str!("../../../plugins/template/.gitignore"),
    ),
    (
        "README.md",
        include_str!("../../../plugins/template/README.md"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../plugins/template/src/lib.rs"),
    ),
    (
        "src/tests.rs",
        include_str!("../../../plugins/template/src/tests.rs"),
    ),
];

/// Where the new project keeps its copy of the SDK. The SDK is not on crates.io, and a path into
/// the checkout this binary was built from exists only on the machine that built it.
const VENDOR_DIR: &str = "vendor/mathison-host";

/// A file of this repository, by its path in the repository.
macro_rules! repository_file {
    ($path:literal) => {
        ($path, include_str!(concat!("../../../", $path)))
    };
}

/// What the SDK builds from: itself, the quantity crate it depends on and the WIT its bindings
/// are generated from. Copied into [`VENDOR_DIR`] laid out as in the repository, so that their
/// relative paths (`../quantity`, `../../wit`) hold.
const VENDORED: &[(&str, &str)] = &[
    repository_file!("plugins/sdk/Cargo.toml"),
    repository_file!("plugins/sdk/src/config.rs"),
    repository_file!("plugins/sdk/src/k8s.rs"),
    repository_file!("plugins/sdk/src/labels.rs"),
    repository_file!("plugins/sdk/src/lib.rs"),
    repository_file!("plugins/sdk/src/log.rs"),
    repository_file!("plugins/sdk/src/metrics.rs"),
    repository_file!("plugins/sdk/src/output.rs"),
    repository_file!("plugins/sdk/src/schema.rs"),
    repository_file!("plugins/sdk/src/testing.rs"),
    repository_file!("plugins/sdk/src/validate.rs"),
    repository_file!("plugins/quantity/Cargo.toml"),
    repository_file!("plugins/quantity/src/lib.rs"),
    repository_file!("wit/README.md"),
    repository_file!("wit/world.wit"),
];

/// The repository's workspace manifest: the vendored crates inherit their package fields,
/// dependencies and lints from its tables (`version.workspace = true`).
const REPOSITORY_MANIFEST: &str = include_str!("../../../Cargo.toml");

/// Create a new plugin project: a Rust crate using the SDK, with a native test and a one-command
/// wasm build.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
    mathison-host new minio && cd minio && cargo test && cargo build-plugin")]
pub struct NewCommand {
    /// The plugin's name: a DNS-1123 label starting with a letter (`minio`, `object-store`).
    pub name: String,

    /// The directory to create; it must not exist [default: ./NAME].
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
}

impl NewCommand {
    pub fn run(self, _verbose: bool) -> anyhow::Result<()> {
        check_name(&self.name)?;
        let dir = self.path.unwrap_or_else(|| PathBuf::from(&self.name));
        if dir.exists() {
            bail!(
                "{} already exists; choose another --path (nothing was written)",
                dir.display()
            );
        }
        write_project(&dir, &self.name)?;
        // Inside the project, `--plugin NAME` finds the build in ./target/wasm32-wasip2/plugin.
        println!(
            "Created the plugin {name} in {dir}, with a copy of the SDK in {VENDOR_DIR}. Next:\n  \
             cd {dir}\n  \
             cargo test\n  \
             cargo build-plugin\n  \
             mathison-host render --plugin {name}",
            name = self.name,
            dir = dir.display(),
        );
        Ok(())
    }
}

/// The name becomes the plugin's name, its Service's name (a DNS-1035 label, hence the letter
/// first) and, in PascalCase, a Rust type.
fn check_name(name: &str) -> anyhow::Result<()> {
    if !is_dns_label(name) {
        bail!(
            "{name:?} is not a valid plugin name: use lower-case letters, digits and '-', \
             at most 63 characters, e.g. \"object-store\""
        );
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        bail!("{name:?} is not a valid plugin name: it must start with a letter");
    }
    Ok(())
}

/// Writes every template and the vendored SDK into a temporary sibling of `dir`, then renames it
/// into place, so a failure leaves nothing half-written behind.
fn write_project(dir: &Path, name: &str) -> anyhow::Result<()> {
    let parent = match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".mathison-new-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot write in {}", parent.display()))?;
    let workspace_tables = workspace_tables();
    let templates = TEMPLATES
        .iter()
        .map(|(file, template)| (PathBuf::from(file), fill(template, name, &workspace_tables)));
    let vendored = VENDORED
        .iter()
        .map(|(file, text)| (Path::new(VENDOR_DIR).join(file), (*text).to_owned()));
    for (file, text) in templates.chain(vendored) {
        let path = staging.path().join(file);
        if let Some(folder) = path.parent() {
            fs::create_dir_all(folder)
                .with_context(|| format!("cannot create {}", folder.display()))?;
        }
        fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    fs::rename(staging.path(), dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // The folder now lives at `dir`; there is nothing left for the guard to delete.
    let _ = staging.keep();
    Ok(())
}

/// A template with its placeholders filled in for the plugin `name`.
fn fill(template: &str, name: &str, workspace_tables: &str) -> String {
    let type_name: String = name
        .split('-')
        .filter(|part| !part.is_empty())
        .map(|part| part[..1].to_ascii_uppercase() + &part[1..])
        .collect();
    template
        .replace("{{name}}", name)
        .replace("{{crate_suffix}}", &name.replace('-', "_"))
        .replace(
            "{{env_prefix}}",
            &name.replace('-', "_").to_ascii_uppercase(),
        )
        .replace("{{type}}", &type_name)
        .replace("{{sdk_path}}", &format!("{VENDOR_DIR}/plugins/sdk"))
        .replace("{{workspace_tables}}", workspace_tables)
}

/// The tables of the repository's manifest that the new project's manifest repeats, so that the
/// vendored crates (and the plugin) inherit from it what they inherit here: the package fields,
/// the lints and the dependencies they name, at the versions the SDK is built and tested with.
fn workspace_tables() -> String {
    let inherited = inherited_dependencies();
    let mut tables = String::new();
    let mut current = "";
    for (table, line) in lines_by_table(REPOSITORY_MANIFEST) {
        let wanted = match table {
            "[workspace.package]" => true,
            "[workspace.dependencies]" => {
                dependency_name(line).is_some_and(|n| inherited.contains(n))
            }
            _ => table.starts_with("[workspace.lints."),
        };
        if !wanted {
            continue;
        }
        if table != current {
            if !tables.is_empty() {
                tables.push('\n');
            }
            tables.push_str(table);
            tables.push('\n');
            current = table;
        }
        tables.push_str(line);
        tables.push('\n');
    }
    tables
}

/// The dependencies that the new project's manifests (the plugin's and the vendored crates')
/// take from the workspace (`serde.workspace = true`, `k8s-openapi = { workspace = true, ... }`).
fn inherited_dependencies() -> BTreeSet<&'static str> {
    TEMPLATES
        .iter()
        .chain(VENDORED)
        .filter(|(file, _)| file.ends_with("Cargo.toml"))
        .flat_map(|(_, manifest)| lines_by_table(manifest))
        .filter(|(table, _)| table.ends_with("dependencies]"))
        .filter_map(|(_, line)| {
            line.strip_suffix(".workspace = true").or_else(|| {
                line.split_once(" = { workspace = true")
                    .map(|(name, _)| name)
            })
        })
        .collect()
}

/// The name a dependency line declares (`serde = { ... }` → `serde`).
fn dependency_name(line: &str) -> Option<&str> {
    line.split_once(" = ").map(|(name, _)| name)
}

/// Each line of a manifest with the header of the table it is in (`[dependencies]`), without
/// headers, comments and blank lines. Enough for our manifests, which put every entry on one
/// line.
fn lines_by_table(manifest: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut table = "";
    manifest.lines().filter_map(move |line| {
        if line.starts_with('[') {
            table = line;
            None
        } else if line.is_empty() || line.starts_with('#') {
            None
        } else {
            Some((table, line))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(file: &str) -> &'static str {
        TEMPLATES
            .iter()
            .find(|(path, _)| *path == file)
            .map(|(_, text)| *text)
            .unwrap_or_else(|| panic!("no template for {file}"))
    }

    #[test]
    fn names_must_be_dns_labels_starting_with_a_letter() {
        for good in ["minio", "object-store", "s3", "a"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "MinIO",
            "object_store",
            "-a",
            "a-",
            "3scale",
            &"a".repeat(64),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        for (file, template) in TEMPLATES {
            let text = fill(template, "object-store", "[workspace.package]");
            assert!(!text.contains("{{"), "{file} keeps a placeholder:\n{text}");
        }
        let lib = fill(template("src/lib.rs"), "object-store", "");
        assert!(lib.contains("pub struct ObjectStorePlugin;"));
        assert!(lib.contains("\"OBJECT_STORE_URL\""));
        let manifest = fill(template("Cargo.toml"), "object-store", "");
        assert!(manifest.contains("path = \"vendor/mathison-host/plugins/sdk\""));
    }

    /// The copy must hold every file the SDK builds from; a file added to the SDK, the quantity
    /// crate or the WIT must be added to [`VENDORED`] too.
    #[test]
    fn every_file_the_sdk_builds_from_is_vendored() {
        fn files_under(repository: &Path, folder: &Path, found: &mut BTreeSet<String>) {
            let entries = fs::read_dir(repository.join(folder))
                .unwrap_or_else(|e| panic!("read {}: {e}", folder.display()));
            for entry in entries {
                let path = folder.join(entry.expect("a directory entry").file_name());
                if repository.join(&path).is_dir() {
                    files_under(repository, &path, found);
                } else {
                    found.insert(path.display().to_string());
                }
            }
        }
        let repository = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut on_disk = BTreeSet::from([
            "plugins/sdk/Cargo.toml".to_owned(),
            "plugins/quantity/Cargo.toml".to_owned(),
        ]);
        for folder in ["plugins/sdk/src", "plugins/quantity/src", "wit"] {
            files_under(&repository, Path::new(folder), &mut on_disk);
        }
        let vendored: BTreeSet<String> = VENDORED.iter().map(|(f, _)| (*f).to_owned()).collect();
        assert_eq!(vendored, on_disk);
    }

    /// The project declares exactly the workspace dependencies its manifests inherit, with the
    /// repository's versions, and the package fields and lints the vendored crates inherit.
    #[test]
    fn the_project_declares_what_its_crates_inherit() {
        let tables = workspace_tables();
        let declared: BTreeSet<&str> = lines_by_table(&tables)
            .filter(|(table, _)| *table == "[workspace.dependencies]")
            .filter_map(|(_, line)| dependency_name(line))
            .collect();
        assert_eq!(declared, inherited_dependencies());
        for expected in ["k8s-openapi", "wit-bindgen", "serde", "schemars"] {
            assert!(declared.contains(expected), "{expected} is not declared");
        }
        let k8s_openapi = lines_by_table(REPOSITORY_MANIFEST)
            .find(|(_, line)| dependency_name(line) == Some("k8s-openapi"))
            .map(|(_, line)| line);
        assert!(k8s_openapi.is_some_and(|line| tables.contains(line)));
        for table in [
            "[workspace.package]\nversion = ",
            "\n[workspace.lints.rust]\n",
            "\n[workspace.lints.clippy]\n",
        ] {
            assert!(tables.contains(table), "{table:?} is missing:\n{tables}");
        }
    }
}
