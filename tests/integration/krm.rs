//! `mathison-host fn`, the KRM function: over a ResourceList on stdin, and run by the real
//! kpt and kubectl kustomize on the example packages in deploy/.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Host, POSTGRES, REDIS, Run, items, tree};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy");

/// A function configuration naming the test's plugin files.
fn config(namespace: &str, extra: &str) -> String {
    format!(
        "apiVersion: mathison.dev/v1alpha1\nkind: Project\nmetadata:\n  name: services\n\
         namespace: {namespace}\nplugins:\n- name: postgres\n  source: {POSTGRES}\n\
         - name: redis\n  source: {REDIS}\n  values:\n    persistence: {{enabled: false}}\n{extra}"
    )
}

fn resource_list(function_config: &str) -> String {
    let indented: String = function_config
        .lines()
        .map(|line| format!("  {line}\n"))
        .collect();
    format!(
        "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n\
         - kind: ConfigMap\n  apiVersion: v1\n  metadata: {{name: mine, namespace: shop}}\n  \
         data: {{on: 'yes'}}\nfunctionConfig:\n{indented}"
    )
}

/// What `render` gives for the same configuration.
fn rendered(host: &Host, namespace: &str) -> Vec<Value> {
    let run = host
        .run(&[
            "render",
            "-p",
            POSTGRES,
            "-p",
            REDIS,
            "-n",
            namespace,
            "--set",
            "redis.persistence.enabled=false",
            "--format",
            "json",
        ])
        .success();
    items(&run)
}

fn output(run: &Run) -> Value {
    serde_yaml::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("a ResourceList on stdout ({e}):\n{}", run.stdout))
}

#[test]
fn the_rendered_objects_follow_the_items_it_received() {
    let host = Host::new();
    let input = resource_list(&config("shop", ""));
    let run = host.run_with_input(&["fn"], &input).success();
    let list = output(&run);
    assert_eq!(list["kind"], "ResourceList");
    let out = list["items"].as_array().expect("items");
    assert_eq!(
        out[0],
        json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "mine", "namespace": "shop"}, "data": {"on": "yes"}})
    );
    assert_eq!(out[1..], rendered(&host, "shop")[..]);
    assert!(
        run.stdout.contains("'on': 'yes'"),
        "YAML 1.1 readers must read the received strings back as strings"
    );

    // JSON in, JSON out, the same items.
    let json_input = serde_json::to_string(
        &serde_yaml::from_str::<Value>(&input).expect("the input as a value"),
    )
    .expect("JSON");
    let run = host.run_with_input(&["fn"], &json_input).success();
    let from_json: Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    assert_eq!(from_json["items"], list["items"]);
}

#[test]
fn a_failure_is_a_result_and_nothing_is_added() {
    let host = Host::new();
    let bad_source = config("shop", "").replace(&format!("source: {POSTGRES}"), "source: 7");
    let run = host
        .run_with_input(&["fn"], &resource_list(&bad_source))
        .failure("plugins[0].source");
    let list = output(&run);
    assert_eq!(
        list["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        run.stdout
    );
    let result = &list["results"][0];
    assert_eq!(result["severity"], "error");
    assert_eq!(result["field"]["path"], "plugins[0].source");
    assert_eq!(
        result["resourceRef"],
        json!({"apiVersion": "mathison.dev/v1alpha1", "kind": "Project", "name": "services"})
    );

    // A value the plugin's schema refuses fails the same way.
    let bad_value = config("shop", "").replace("enabled: false", "enabled: maybe");
    let run = host
        .run_with_input(&["fn"], &resource_list(&bad_value))
        .failure("persistence.enabled");
    let list = output(&run);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    assert!(
        list["results"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("persistence.enabled")),
        "{}",
        run.stdout
    );

    // Input that is not a ResourceList is still answered with one.
    let run = host
        .run_with_input(&["fn"], "apiVersion: v1\nkind: List\n")
        .failure("not a config.kubernetes.io/v1 ResourceList");
    assert_eq!(output(&run)["results"][0]["severity"], "error");
}

/// The client `name`, or `None` with the reason the test is skipped.
fn client(name: &str) -> Option<PathBuf> {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file());
    if found.is_none() {
        eprintln!(
            "skipped: {name} is not installed. It comes with the machine image (Google Cloud \
             CLI packages), which no package registry reachable here serves, so \
             .ci/install-deps cannot install it"
        );
    }
    found
}

/// A folder holding `mathison-host` (this build) and the plugins, for PATH and the plugin
/// search path, as an installed tool would have them.
fn tools(host: &Host) -> PathBuf {
    let bin = host.path("bin");
    fs::create_dir_all(&bin).expect("bin folder");
    symlink(
        env!("CARGO_BIN_EXE_mathison-host"),
        bin.join("mathison-host"),
    )
    .expect("symlink");
    bin
}

/// A command run the way a user runs it: PATH with `tools` first, plugins found by name, the
/// test's own cache.
fn client_command(host: &Host, client: &Path, tools: &Path) -> Command {
    let mut command = Command::new(client);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![tools.to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    let plugins = Path::new(POSTGRES).parent().expect("the plugins' folder");
    command
        .env("PATH", std::env::join_paths(dirs).expect("PATH"))
        .env("MATHISON_PLUGIN_PATH", plugins)
        .env("MATHISON_CACHE_DIR", host.cache.path())
        .env("HOME", host.work.path());
    command
}

fn copy_example(name: &str, to: &Path) {
    let from = Path::new(EXAMPLES).join(name);
    let status = Command::new("cp")
        .arg("-R")
        .arg(&from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(status.success(), "copy {}", from.display());
}

/// Every object of the YAML files under `dir` (kpt writes new objects into a folder per
/// namespace), without the configuration kept beside them.
fn package_objects(dir: &Path) -> Vec<Value> {
    let mut objects = Vec::new();
    for file in tree(dir) {
        if file.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = fs::read_to_string(&file).expect("a package file");
        for document in serde_yaml::Deserializer::from_str(&text) {
            let object: Value = serde::Deserialize::deserialize(document).expect("YAML");
            let local =
                object["metadata"]["annotations"]["config.kubernetes.io/local-config"] == "true";
            if !object.is_null() && !local {
                objects.push(object);
            }
        }
    }
    objects
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    tree(dir)
        .into_iter()
        .filter(|path| path.is_file())
        .map(|path| {
            let bytes = fs::read(&path).expect("read");
            (path, bytes)
        })
        .collect()
}

fn by_identity(objects: Vec<Value>) -> Vec<(String, Value)> {
    let mut keyed: Vec<(String, Value)> = objects
        .into_iter()
        .map(|o| {
            let key = format!(
                "{}/{}/{}",
                o["kind"].as_str().unwrap_or_default(),
                o["metadata"]["namespace"].as_str().unwrap_or_default(),
                o["metadata"]["name"].as_str().unwrap_or_default()
            );
            (key, o)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed
}

/// What `render` gives for the example project in `dir`.
fn rendered_example(host: &Host, dir: &Path) -> Vec<Value> {
    let project = dir.join("mathison.yaml");
    let plugins = Path::new(POSTGRES).parent().expect("the plugins' folder");
    let run = Run::from(
        host.command()
            .env("MATHISON_PLUGIN_PATH", plugins)
            .args(["render", "--format", "json", "--project"])
            .arg(&project)
            .output()
            .expect("render"),
    )
    .success();
    // render writes the lock file the function only reads.
    let _ = fs::remove_file(dir.join("mathison.lock"));
    items(&run)
}

#[test]
fn kpt_fn_eval_runs_it_as_an_exec_function() {
    let Some(kpt) = client("kpt") else { return };
    let host = Host::new();
    let tools = tools(&host);
    let package = host.path("package");
    fs::create_dir_all(&package).expect("package");
    let mine = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mine\n  namespace: shop\ndata:\n  keep: me\n";
    fs::write(package.join("mine.yaml"), mine).expect("write");
    fs::write(host.path("fn-config.yaml"), config("shop", "")).expect("write");
    let eval = || {
        Run::from(
            client_command(&host, &kpt, &tools)
                .args(["fn", "eval", "package", "--exec", "mathison-host fn"])
                .args(["--fn-config", "fn-config.yaml"])
                .current_dir(host.work.path())
                .output()
                .expect("kpt"),
        )
        .success()
    };
    eval();
    assert_eq!(
        fs::read_to_string(package.join("mine.yaml")).expect("read"),
        mine,
        "the package's own file is kept as it was"
    );
    let mut expected = rendered(&host, "shop");
    expected.push(serde_yaml::from_str(mine).expect("YAML"));
    assert_eq!(
        by_identity(package_objects(&package)),
        by_identity(expected)
    );
    // Evaluated again, the function replaces what it wrote: nothing changes.
    let before = snapshot(&package);
    eval();
    assert_eq!(snapshot(&package), before);
}

#[test]
fn kpt_fn_render_runs_the_example_packages_pipeline_held_to_its_lock() {
    let Some(kpt) = client("kpt") else { return };
    let host = Host::new();
    let tools = tools(&host);
    let package = host.path("kpt");
    copy_example("kpt", &package);
    let expected = rendered_example(&host, &package);
    let render = || {
        Run::from(
            client_command(&host, &kpt, &tools)
                .args(["fn", "render", "kpt", "--allow-exec"])
                .current_dir(host.work.path())
                .output()
                .expect("kpt"),
        )
    };
    render().success();
    assert_eq!(
        by_identity(package_objects(&package)),
        by_identity(expected.clone())
    );
    let before = snapshot(&package);
    render().success();
    assert_eq!(snapshot(&package), before, "idempotent");

    // With a lock file beside the configuration, the plugins are held to it.
    Run::from(
        client_command(&host, &tools.join("mathison-host"), &tools)
            .args(["lock", "--project", "kpt/mathison.yaml"])
            .current_dir(host.work.path())
            .output()
            .expect("lock"),
    )
    .success();
    render().success();
    let lock = package.join("mathison.lock");
    let text = fs::read_to_string(&lock).expect("the lock file");
    let digest = text
        .split("digest: ")
        .nth(1)
        .and_then(|rest| rest.get(..71))
        .expect("a digest in the lock file")
        .to_string();
    fs::write(
        &lock,
        text.replace(&digest, &format!("sha256:{}", "0".repeat(64))),
    )
    .expect("write");
    let run = render();
    assert_ne!(
        run.code,
        Some(0),
        "a plugin that is not the locked one fails the pipeline"
    );
    assert!(
        run.stderr.contains("mathison.lock"),
        "kpt shows why: {}",
        run.stderr
    );
    assert_eq!(
        by_identity(package_objects(&package)),
        by_identity(expected)
    );
}

#[test]
fn kubectl_kustomize_runs_it_as_a_generator_beside_a_patch() {
    let Some(kubectl) = client("kubectl") else {
        return;
    };
    let host = Host::new();
    let tools = tools(&host);
    let overlay = host.path("kustomize");
    copy_example("kustomize", &overlay);
    let mut expected = rendered_example(&host, &overlay);
    let run = Run::from(
        client_command(&host, &kubectl, &tools)
            .args(["kustomize", "--enable-alpha-plugins", "kustomize"])
            .env("KUSTOMIZE_PLUGIN_HOME", overlay.join("plugin"))
            .current_dir(host.work.path())
            .output()
            .expect("kubectl"),
    )
    .success();
    let built: Vec<Value> = serde_yaml::Deserializer::from_str(&run.stdout)
        .map(|document| serde::Deserialize::deserialize(document).expect("YAML"))
        .collect();
    // The overlay's patch, applied by hand to what render gives.
    let postgres = expected
        .iter_mut()
        .find(|o| o["kind"] == "StatefulSet" && o["metadata"]["name"] == "postgres")
        .expect("the postgres StatefulSet");
    let container = postgres["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .and_then(|containers| containers.iter_mut().find(|c| c["name"] == "postgres"))
        .expect("the postgres container");
    container["resources"]["limits"]["memory"] = json!("4Gi");
    assert_eq!(by_identity(built), by_identity(expected));
}
