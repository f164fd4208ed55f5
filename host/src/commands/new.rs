//! `mathison-host new`: create a plugin project from the templates in `plugins/template/`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;

use crate::k8s::is_dns_label;

/// The SDK of the checkout this binary was built from; `--sdk` points elsewhere.
const BUILT_FROM_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/sdk");

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

    /// The SDK crate the project depends on (`plugins/sdk` of a mathison-host checkout)
    /// [default: the SDK this binary was built with].
    #[arg(long, value_name = "PATH")]
    pub sdk: Option<PathBuf>,
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
        let sdk = find_sdk(self.sdk.as_deref())?;
        let sdk = sdk
            .to_str()
            .with_context(|| format!("the SDK path {} is not valid UTF-8", sdk.display()))?;
        write_project(&dir, &self.name, sdk)?;
        println!(
            "Created the plugin {name} in {dir}. Next:\n  \
             cd {dir}\n  \
             cargo test\n  \
             cargo build-plugin\n  \
             mathison-host render --plugin target/wasm32-wasip2/plugin/mathison_plugin_{suffix}.wasm",
            name = self.name,
            dir = dir.display(),
            suffix = self.name.replace('-', "_"),
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

/// The SDK crate's absolute path, checked to be the SDK: the project lives elsewhere, so a
/// relative path or a wrong folder would only fail later, inside cargo.
fn find_sdk(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = given.unwrap_or(Path::new(BUILT_FROM_SDK));
    let hint = if given.is_some() {
        "--sdk must name the plugins/sdk folder of a mathison-host checkout"
    } else {
        "this binary was built elsewhere; pass --sdk with the plugins/sdk folder of a \
         mathison-host checkout"
    };
    let manifest = fs::read_to_string(path.join("Cargo.toml"))
        .with_context(|| format!("no SDK at {}: {hint}", path.display()))?;
    if !manifest.contains("name = \"mathison-plugin-sdk\"") {
        bail!(
            "{} is not the mathison-plugin-sdk crate: {hint}",
            path.display()
        );
    }
    path.canonicalize()
        .with_context(|| format!("cannot resolve {}", path.display()))
}

/// Writes every template into a temporary sibling of `dir`, then renames it into place, so a
/// failure leaves nothing half-written behind.
fn write_project(dir: &Path, name: &str, sdk: &str) -> anyhow::Result<()> {
    let parent = match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".mathison-new-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot write in {}", parent.display()))?;
    for (file, template) in TEMPLATES {
        let path = staging.path().join(file);
        if let Some(folder) = path.parent() {
            fs::create_dir_all(folder)
                .with_context(|| format!("cannot create {}", folder.display()))?;
        }
        fs::write(&path, fill(template, name, sdk))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    fs::rename(staging.path(), dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // The folder now lives at `dir`; there is nothing left for the guard to delete.
    let _ = staging.keep();
    Ok(())
}

/// A template with its placeholders filled in for the plugin `name`.
fn fill(template: &str, name: &str, sdk: &str) -> String {
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
        .replace("{{sdk_path}}", &toml_escape(sdk))
}

/// The inside of a TOML basic string: the SDK path is written between double quotes.
fn toml_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
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
            let text = fill(template, "object-store", "/sdk");
            assert!(!text.contains("{{"), "{file} keeps a placeholder:\n{text}");
        }
        let lib = fill(template("src/lib.rs"), "object-store", "/sdk");
        assert!(lib.contains("pub struct ObjectStorePlugin;"));
        assert!(lib.contains("\"OBJECT_STORE_URL\""));
    }

    /// The template pins k8s-openapi itself (a generated project is outside the workspace): it
    /// must stay the version the SDK is built and tested with.
    #[test]
    fn template_uses_the_workspace_k8s_openapi() {
        let workspace = include_str!("../../../Cargo.toml");
        let version_of = |manifest: &str| {
            manifest
                .lines()
                .find(|line| line.starts_with("k8s-openapi = "))
                .and_then(|line| line.split('"').nth(1))
                .map(str::to_owned)
        };
        assert!(version_of(workspace).is_some());
        assert_eq!(version_of(template("Cargo.toml")), version_of(workspace));
    }

    #[test]
    fn refuses_what_is_not_the_sdk() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(find_sdk(Some(dir.path())).is_err());
        fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"other\"\n",
        )
        .expect("write");
        let error = find_sdk(Some(dir.path())).err().map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("is not the mathison-plugin-sdk crate")));
        assert!(
            find_sdk(None).is_ok(),
            "the built-from SDK exists in a checkout"
        );
    }
}
