//! The Argo CD Config Management Plugin (deploy/argocd/plugin.yaml): its discovery rule and its
//! generate command, exactly as written there, run as Argo CD's sidecar runs them: in the
//! application's folder, with Argo CD's variables and the sidecar image's environment.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_yaml::Value;

use crate::support::{Host, POSTGRES, REDIS, Run, read_dir, tree};

const PROJECT: &str = "apiVersion: mathison.dev/v1alpha1\n\
                       kind: Project\n\
                       namespace: data\n\
                       instance: prod\n\
                       plugins:\n\
                       \x20 - name: postgres\n\
                       \x20   values: {database: shop}\n\
                       \x20 - name: redis\n";

/// What Argo CD sets for an Application `shop` deploying into `shop-prod`.
const APPLICATION: [(&str, &str); 2] = [
    ("ARGOCD_APP_NAME", "shop"),
    ("ARGOCD_APP_NAMESPACE", "shop-prod"),
];

/// deploy/argocd/plugin.yaml, which the sidecar reads as a file.
fn plugin() -> Value {
    let plugin = deploy_file("plugin.yaml");
    assert_eq!(plugin["apiVersion"], "argoproj.io/v1alpha1");
    assert_eq!(plugin["kind"], "ConfigManagementPlugin");
    plugin
}

/// A file of deploy/argocd, as YAML.
fn deploy_file(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/argocd")
        .join(name);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A list of strings of a deploy/argocd file.
fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("a list: {value:?}"))
        .iter()
        .map(|item| item.as_str().expect("a string").to_string())
        .collect()
}

/// The objects of a YAML stream.
fn objects(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|document| Value::deserialize(document).expect("a YAML document"))
        .filter(|object| !object.is_null())
        .collect()
}

/// An application folder as the sidecar receives it (the host's working folder): a project
/// naming the official plugins by name, a values file, and the lock made beforehand; the
/// plugins are found where the sidecar image keeps them.
struct App {
    host: Host,
    plugins: tempfile::TempDir,
}

impl App {
    fn new() -> Self {
        let app = Self {
            host: Host::new(),
            plugins: tempfile::tempdir().expect("temp dir"),
        };
        // Named as the image names them (deploy/argocd/Dockerfile).
        for (plugin, file) in [(POSTGRES, "postgres.wasm"), (REDIS, "redis.wasm")] {
            fs::copy(plugin, app.plugins.path().join(file)).expect("copy a plugin");
        }
        fs::write(app.host.path("mathison.yaml"), PROJECT).expect("write mathison.yaml");
        fs::write(
            app.host.path("values-prod.yaml"),
            "postgres: {persistence: {size: 20Gi}}\n",
        )
        .expect("write values-prod.yaml");
        app.run(app.host.command().arg("lock")).success();
        app
    }

    fn dir(&self) -> &Path {
        self.host.work.path()
    }

    /// Runs `command` with the sidecar image's plugin path.
    fn run(&self, command: &mut Command) -> Run {
        Run::from(
            command
                .env("MATHISON_PLUGIN_PATH", self.plugins.path())
                .output()
                .expect("run a command"),
        )
    }

    /// `mathison-host render ARGS` in the application's folder.
    fn render(&self, args: &[&str]) -> Run {
        self.run(self.host.command().arg("render").args(args))
    }

    /// plugin.yaml's generate command and args, exactly as written, with `env` from Argo CD.
    fn generate(&self, env: &[(&str, &str)]) -> Run {
        let generate = &plugin()["spec"]["generate"];
        let mut argv = strings(&generate["command"]);
        argv.extend(strings(&generate["args"]));
        self.exec(&argv, env)
    }

    /// `argv` in the application's folder, with the built binary first on PATH, as the
    /// sidecar image has it.
    fn exec(&self, argv: &[String], env: &[(&str, &str)]) -> Run {
        let (program, args) = argv.split_first().expect("a command");
        let binary = Path::new(env!("CARGO_BIN_EXE_mathison-host"));
        let path = std::env::join_paths(binary.parent().into_iter().map(Path::to_path_buf).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .expect("a PATH");
        let mut command = self.host.command_of(program);
        command
            .args(args)
            .env("PATH", path)
            .envs(env.iter().copied());
        self.run(&mut command)
    }
}

#[test]
fn generate_renders_the_locked_project_into_the_applications_namespace() {
    let app = App::new();
    let checkout = read_dir(app.dir());
    let mut env = APPLICATION.to_vec();
    env.extend([
        ("ARGOCD_ENV_MATHISON_VALUES", "values-prod.yaml"),
        (
            "ARGOCD_ENV_MATHISON_SET",
            "redis.persistence.enabled=false\npostgres.pod.annotations.note=two words\n",
        ),
        (
            "ARGOCD_ENV_MATHISON_SET_STRING",
            "postgres.pod.labels.release=2024",
        ),
    ]);
    let generated = app.generate(&env).success();
    assert_eq!(
        read_dir(app.dir()),
        checkout,
        "generate writes nothing into the checkout"
    );

    let rendered = app
        .render(&[
            "--namespace",
            "shop-prod",
            "--instance",
            "shop",
            "--values",
            "values-prod.yaml",
            "--set",
            "redis.persistence.enabled=false",
            "--set",
            "postgres.pod.annotations.note=two words",
            "--set-string",
            "postgres.pod.labels.release=2024",
        ])
        .success();
    assert!(
        generated.stdout == rendered.stdout,
        "generate prints what render does with the Application's namespace, name and \
         parameters:\n--- generate\n{}\n--- render\n{}",
        generated.stdout,
        rendered.stdout
    );
    for needle in ["storage: 20Gi", "note: two words", "release: '2024'"] {
        assert!(generated.stdout.contains(needle), "{needle} is rendered");
    }
    let objects = objects(&generated.stdout);
    assert!(objects.len() > 5, "{}", generated.stdout);
    for object in &objects {
        let metadata = &object["metadata"];
        assert_eq!(metadata["namespace"], "shop-prod", "{object:?}");
        assert_eq!(
            metadata["labels"]["app.kubernetes.io/instance"], "shop",
            "{object:?}"
        );
    }
}

#[test]
fn an_application_without_a_destination_namespace_keeps_the_projects() {
    let app = App::new();
    // An Application outside Argo CD's namespace is named NAMESPACE_NAME, which is no label.
    let generated = app
        .generate(&[("ARGOCD_APP_NAME", "team-a_shop.eu")])
        .success();
    let rendered = app.render(&["--instance", "team-a-shop-eu"]).success();
    assert!(generated.stdout == rendered.stdout, "{}", generated.stdout);
    for object in objects(&generated.stdout) {
        assert_eq!(object["metadata"]["namespace"], "data", "{object:?}");
    }
}

#[test]
fn discovery_matches_a_folder_with_a_project_file_only() {
    let file_name = plugin()["spec"]["discover"]["fileName"]
        .as_str()
        .expect("discover.fileName")
        .to_string();
    // Argo CD matches fileName with Go's filepath.Glob in the application's folder; without
    // a metacharacter, that is whether the file is there.
    assert!(
        !file_name.contains(['*', '?', '[', '\\']),
        "{file_name} is a plain path"
    );
    let app = App::new();
    assert!(app.dir().join(&file_name).is_file(), "{file_name} matches");
    let other = tempfile::tempdir().expect("temp dir");
    fs::write(other.path().join("kustomization.yaml"), "resources: []\n").expect("write");
    assert!(
        !other.path().join(&file_name).exists(),
        "{file_name} does not match another application"
    );
}

#[test]
fn a_stale_or_missing_lock_fails_generate_and_writes_nothing() {
    let app = App::new();
    // The project drops redis, which its lock still pins.
    let without_redis = PROJECT.replace("  - name: redis\n", "");
    assert_ne!(without_redis, PROJECT);
    fs::write(app.host.path("mathison.yaml"), &without_redis).expect("edit mathison.yaml");
    let checkout = read_dir(app.dir());
    let stale = app.generate(&APPLICATION).failure("out of date");
    assert!(stale.stdout.is_empty(), "{}", stale.stdout);
    assert_eq!(read_dir(app.dir()), checkout, "the lock is not rewritten");

    fs::remove_file(app.host.path("mathison.lock")).expect("remove the lock");
    let checkout = read_dir(app.dir());
    let missing = app.generate(&APPLICATION).failure("is missing");
    assert!(missing.stdout.is_empty(), "{}", missing.stdout);
    assert_eq!(read_dir(app.dir()), checkout, "no lock is written");
}

#[test]
fn a_values_file_outside_the_application_folder_is_refused() {
    let app = App::new();
    for file in ["../values.yaml", "/etc/passwd", "config/../../values.yaml"] {
        let run = app.generate(&[("ARGOCD_ENV_MATHISON_VALUES", file)]);
        assert_eq!(run.code, Some(2), "{file}: {}", run.stderr);
        assert!(
            run.stderr
                .starts_with(&format!("error: ARGOCD_ENV_MATHISON_VALUES: {file} ")),
            "{}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{}", run.stdout);
    }
}

#[test]
fn the_init_container_leaves_generate_nothing_to_compile() {
    let app = App::new();
    // The lock compiled the plugins; the pod's cache starts empty.
    fs::remove_dir_all(app.host.cache.path()).expect("empty the cache");
    fs::create_dir(app.host.cache.path()).expect("empty the cache");
    let patch = deploy_file("argocd-repo-server-patch.yaml");
    let init = patch["spec"]["template"]["spec"]["initContainers"]
        .as_sequence()
        .expect("init containers")
        .iter()
        .find(|container| container["name"] == "mathison-warm-cache")
        .expect("the init container mathison-warm-cache");
    let mut argv = strings(&init["command"]);
    argv.extend(strings(&init["args"]));
    app.exec(&argv, &[]).success();
    // Compiled code only: generate also memoises the plugins' answers beside it.
    let compiled = || -> Vec<PathBuf> {
        tree(app.host.cache.path())
            .into_iter()
            .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
            .collect()
    };
    let warm = compiled();
    assert!(!warm.is_empty(), "the init container filled the cache");

    app.generate(&APPLICATION).success();
    assert_eq!(
        compiled(),
        warm,
        "generate compiled nothing the init container had not"
    );
}
