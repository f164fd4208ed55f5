//! The host against real registries: `push` publishes what `render` reads back, byte for byte;
//! the project and lock files pin what a render uses and keep it working offline; registries
//! that refuse, hang, lie or hold something else fail with one line naming the reference and
//! leave nothing unverified in the cache.

use std::ffi::OsStr;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::{
    GarbageServer, HangingServer, Registry, digest, push_container_image, wkg_pull, wkg_push,
};
use crate::support::{EVIL_IMPORT, HTTP_IMPORT, Host, POSTGRES, REDIS, Run, one_error_naming};

/// `oci://HOST:PORT/name`.
fn oci(host: &str, name: &str) -> String {
    format!("oci://{host}/{name}")
}

/// `mathison-host push FILE REFERENCE`, which must succeed; returns what it printed, the
/// reference by digest, after checking its form.
#[track_caller]
fn push(host: &Host, file: &str, reference: &str) -> String {
    let run = host.run(&["push", file, reference]).success();
    let pushed = run.stdout.trim_end_matches('\n');
    assert_eq!(
        run.stdout.lines().count(),
        1,
        "one line on stdout: {}",
        run.stdout
    );
    let (repository, _) = reference.rsplit_once(':').expect("a tag");
    let hex = pushed
        .strip_prefix(&format!("{repository}@sha256:"))
        .unwrap_or_else(|| panic!("{reference} pushed as {repository}@sha256:...: {pushed}"));
    assert!(
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "a SHA-256 digest: {pushed}"
    );
    pushed.to_string()
}

/// The `sha256:HEX` of a reference by digest.
fn digest_of(pushed: &str) -> &str {
    let at = pushed.rfind('@').expect("a reference by digest");
    &pushed[at + 1..]
}

/// Runs the host with `env` added to its clean environment.
fn run_with(host: &Host, env: &[(&str, &OsStr)], args: &[&str]) -> Run {
    let mut command = host.command();
    for (name, value) in env {
        command.env(name, value);
    }
    Run::from(command.args(args).output().expect("run mathison-host"))
}

/// The blob store of `host`'s cache.
fn blob_dir(host: &Host) -> PathBuf {
    host.cache.path().join("oci/blobs/sha256")
}

/// Where `host`'s cache keeps the blob `sha256:HEX`.
fn cached_blob(host: &Host, digest: &str) -> PathBuf {
    blob_dir(host).join(digest.strip_prefix("sha256:").expect("a sha256 digest"))
}

/// The files of the blob store (none when it does not exist), sorted.
fn blobs(host: &Host) -> Vec<PathBuf> {
    let mut blobs: Vec<PathBuf> = match fs::read_dir(blob_dir(host)) {
        Ok(dir) => dir.map(|entry| entry.expect("entry").path()).collect(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => panic!("read {}: {error}", blob_dir(host).display()),
    };
    blobs.sort();
    blobs
}

/// Every file of the blob store is a complete blob, named by the digest of what it holds: no
/// `.partial-*` download, nothing damaged or foreign.
#[track_caller]
fn assert_only_verified_blobs(host: &Host, context: &str) {
    for blob in blobs(host) {
        let name = blob
            .file_name()
            .and_then(OsStr::to_str)
            .expect("a UTF-8 name");
        assert!(blob.is_file(), "{context}: {} is a file", blob.display());
        let bytes = fs::read(&blob).expect("read a blob");
        assert_eq!(
            digest(&bytes),
            format!("sha256:{name}"),
            "{context}: {} is a complete blob named by its digest",
            blob.display()
        );
    }
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

#[test]
fn pushed_plugins_render_by_tag_as_their_files_do() {
    let registry = Registry::anonymous();
    let publisher = Host::new();
    let postgres_tag = oci(registry.host(), "plugins/postgres:1.0.0");
    let redis_tag = oci(registry.host(), "plugins/redis:1.0.0");
    let postgres = push(&publisher, POSTGRES, &postgres_tag);
    let redis = push(&publisher, REDIS, &redis_tag);
    assert_eq!(
        push(&publisher, POSTGRES, &postgres_tag),
        postgres,
        "pushing the same file again gives the same digest"
    );
    assert_eq!(push(&publisher, REDIS, &redis_tag), redis);

    // What was published is a Wasm artifact of the file, under the digest push printed.
    let (body, manifest) = registry.manifest("plugins/postgres", "1.0.0");
    assert_eq!(digest(&body), digest_of(&postgres));
    let file = fs::read(POSTGRES).expect("read the postgres plugin");
    assert_eq!(
        manifest["config"]["mediaType"], "application/vnd.wasm.config.v0+json",
        "{manifest:#}"
    );
    assert_eq!(
        manifest["layers"].as_array().map(Vec::len),
        Some(1),
        "{manifest:#}"
    );
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(manifest["layers"][0]["digest"], digest(&file).as_str());
    let annotations = &manifest["annotations"];
    assert_eq!(annotations["org.opencontainers.image.title"], "postgres");
    for key in [
        "org.opencontainers.image.version",
        "org.opencontainers.image.description",
        "org.opencontainers.image.created",
        "dev.mathison.plugin.wit-version",
    ] {
        assert!(
            annotations[key].as_str().is_some_and(|v| !v.is_empty()),
            "annotation {key}: {manifest:#}"
        );
    }

    // A host with a cache of its own fetches them.
    let flags = [
        "--namespace",
        "data",
        "--instance",
        "prod",
        "--set",
        "redis.persistence.enabled=false",
        "--set",
        "postgres.persistence.size=20Gi",
    ];
    let render = |host: &Host, plugins: [&str; 2]| {
        let mut args = vec!["render", "-p", plugins[0], "-p", plugins[1]];
        args.extend(flags);
        host.run(&args).success().stdout
    };
    let consumer = Host::new();
    let from_registry = render(&consumer, [&postgres_tag, &redis_tag]);
    let from_files = render(&Host::new(), [POSTGRES, REDIS]);
    assert!(
        from_registry == from_files,
        "the registry's plugins render byte for byte as their files do"
    );
    assert!(from_registry.contains("20Gi"), "the flags were applied");

    // The cache holds both manifests and both components, intact.
    for (pushed, file) in [(&postgres, POSTGRES), (&redis, REDIS)] {
        let file = fs::read(file).expect("read a plugin");
        let layer = fs::read(cached_blob(&consumer, &digest(&file))).expect("the cached layer");
        assert!(layer == file, "the cached layer is the plugin file");
        let manifest =
            fs::read(cached_blob(&consumer, digest_of(pushed))).expect("the cached manifest");
        assert_eq!(digest(&manifest), digest_of(pushed));
    }
    assert_only_verified_blobs(&consumer, "after the render");
    assert_eq!(blobs(&consumer).len(), 4, "two manifests and two layers");
}

#[test]
fn a_locked_project_renders_offline_as_its_files_do() {
    let registry = Registry::anonymous();
    let host = Host::new();
    let postgres_tag = oci(registry.host(), "mathison/postgres:0.1");
    let redis_tag = oci(registry.host(), "mathison/redis:0.1");
    let postgres = push(&host, POSTGRES, &postgres_tag);
    let redis = push(&host, REDIS, &redis_tag);
    // The project's renders start from an empty cache: nothing left by push.
    fs::remove_dir_all(host.cache.path().join("oci")).expect("empty the blob store");

    fs::write(host.path("pg-password"), "hunter2-in-a-file\n").expect("write the secret");
    fs::write(
        host.path("mathison.yaml"),
        format!(
            "apiVersion: mathison.dev/v1alpha1\n\
             kind: Project\n\
             namespace: data\n\
             instance: prod\n\
             plugins:\n\
             \x20 - name: postgres\n\
             \x20   source: {postgres_tag}\n\
             \x20   values: {{persistence: {{size: 20Gi}}, database: shop}}\n\
             \x20   secretInputs: {{postgres-password: file:./pg-password}}\n\
             \x20 - name: redis\n\
             \x20   source: {redis_tag}\n\
             \x20   values: {{persistence: {{enabled: false}}}}\n"
        ),
    )
    .expect("write mathison.yaml");

    host.run(&["lock"]).success();
    let lock_text = fs::read_to_string(host.path("mathison.lock")).expect("mathison.lock");
    let lock: Value = serde_yaml::from_str(&lock_text).expect("a YAML lock file");
    assert_eq!(lock["lockVersion"], 1, "{lock_text}");
    for (index, (name, tag, pushed, file)) in [
        ("postgres", &postgres_tag, &postgres, POSTGRES),
        ("redis", &redis_tag, &redis, REDIS),
    ]
    .into_iter()
    .enumerate()
    {
        let entry = &lock["plugins"][index];
        let file = fs::read(file).expect("read a plugin");
        assert_eq!(entry["name"], name, "{lock_text}");
        assert_eq!(entry["source"], tag.as_str(), "{lock_text}");
        assert_eq!(entry["digest"], digest_of(pushed), "{lock_text}");
        assert_eq!(entry["layer"], digest(&file).as_str(), "{lock_text}");
        assert_eq!(entry["size"], file.len(), "{lock_text}");
    }

    let a = host.run(&["render"]).success();
    assert!(
        !a.stderr.contains("wrote mathison.lock"),
        "the lock is up to date:\n{}",
        a.stderr
    );
    assert!(a.stdout.contains("20Gi") && a.stdout.contains("shop"));

    drop(registry);
    let offline = host.run(&["render", "--locked"]).success();
    assert!(
        offline.stdout == a.stdout,
        "with the registry gone, the project and its lock render the same bytes"
    );
    assert_eq!(
        fs::read_to_string(host.path("mathison.lock")).expect("mathison.lock"),
        lock_text,
        "the lock is untouched"
    );

    fs::write(
        host.path("values.yaml"),
        "postgres: {persistence: {size: 20Gi}, database: shop}\n\
         redis: {persistence: {enabled: false}}\n",
    )
    .expect("write values.yaml");
    let from_files = Host::new();
    let files = Run::from(
        from_files
            .command()
            .current_dir(host.work.path())
            .args([
                "render",
                "--plugin",
                POSTGRES,
                "--plugin",
                REDIS,
                "-f",
                "values.yaml",
                "--namespace",
                "data",
                "--instance",
                "prod",
                "--secret-input",
                "postgres.postgres-password=file:pg-password",
            ])
            .output()
            .expect("run mathison-host"),
    )
    .success();
    assert!(
        files.stdout == a.stdout,
        "the project renders as its plugin files do with the same values and flags"
    );
}

#[test]
fn a_lock_pins_the_digest_when_the_tag_moves() {
    let registry = Registry::anonymous();
    let host = Host::new();
    let tag = oci(registry.host(), "mathison/postgres:stable");
    push(&host, POSTGRES, &tag);
    fs::write(
        host.path("mathison.yaml"),
        format!(
            "apiVersion: mathison.dev/v1alpha1\nkind: Project\nplugins:\n  - name: postgres\n    source: {tag}\n"
        ),
    )
    .expect("write mathison.yaml");
    let first = host.run(&["render"]).success();
    assert!(
        first.stderr.contains("wrote mathison.lock"),
        "{}",
        first.stderr
    );

    // The tag now names another plugin. A host with an empty cache and the lock fetches the
    // locked digest, never the tag.
    push(&host, REDIS, &tag);
    let elsewhere = Host::new();
    for file in ["mathison.yaml", "mathison.lock"] {
        fs::copy(host.path(file), elsewhere.path(file)).expect("copy the project");
    }
    let again = elsewhere.run(&["render", "--locked"]).success();
    assert!(again.stdout == first.stdout, "the locked plugin rendered");
    // Locking again resolves the tag, to a plugin whose name is not the project's: refused,
    // and the lock keeps the plugin it had.
    let locked = fs::read(elsewhere.path("mathison.lock")).expect("read the lock");
    let run = elsewhere.run(&["lock"]).failure("calls itself \"redis\"");
    assert!(run.stderr.contains("\"postgres\""), "{}", run.stderr);
    assert!(fs::read(elsewhere.path("mathison.lock")).expect("read the lock") == locked);
    elsewhere.run(&["render", "--locked"]).success();
}

#[test]
fn a_digest_reference_renders_offline_and_damaged_blobs_are_never_used() {
    let registry = Registry::anonymous();
    let pushed = push(
        &Host::new(),
        POSTGRES,
        &oci(registry.host(), "plugins/postgres:1.0"),
    );
    let host = Host::new();
    let render = || host.run(&["render", "-p", &pushed]);
    let reference = render().success().stdout;
    let file = fs::read(POSTGRES).expect("read the postgres plugin");
    let layer = cached_blob(&host, &digest(&file));
    let manifest = cached_blob(&host, digest_of(&pushed));
    let manifest_bytes = fs::read(&manifest).expect("the cached manifest");
    assert!(fs::read(&layer).expect("the cached layer") == file);

    // Damaged while the registry is up: fetched again.
    let mut damaged = file.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0xff;
    fs::write(&layer, &damaged).expect("damage the cached layer");
    assert!(render().success().stdout == reference);
    assert!(
        fs::read(&layer).expect("the cached layer") == file,
        "fetched again"
    );
    assert_only_verified_blobs(&host, "after a fetch again");

    drop(registry);
    let offline = render().success();
    assert!(offline.stdout == reference, "rendered from the cache alone");

    // Damaged with the registry gone: refused, never loaded; the right bytes work again.
    for (blob, good) in [(&layer, &file), (&manifest, &manifest_bytes)] {
        for bad in [damaged.as_slice(), &good[..good.len() / 2], b"{}"] {
            fs::write(blob, bad).expect("damage a cached blob");
            let run = render().failure("cannot reach the registry");
            one_error_naming(&run, &pushed);
            assert!(
                run.stdout.is_empty(),
                "nothing rendered from a damaged blob"
            );
            assert_only_verified_blobs(&host, "after a damaged blob");
            fs::write(blob, good).expect("restore the blob");
            assert!(render().success().stdout == reference);
        }
    }
}

#[test]
fn wkg_reads_what_push_publishes_and_the_host_reads_what_wkg_publishes() {
    let registry = Registry::anonymous();
    let host = Host::new();
    push(
        &host,
        POSTGRES,
        &oci(registry.host(), "plugins/postgres:1.0.0"),
    );
    let out = tempfile::tempdir().expect("temp dir");
    let pulled = out.path().join("postgres.wasm");
    wkg_pull(
        &registry,
        &registry.reference("plugins/postgres:1.0.0"),
        &pulled,
    )
    .success();
    assert!(
        fs::read(&pulled).expect("read what wkg pulled") == fs::read(POSTGRES).expect("read"),
        "wkg pulls the pushed file, byte for byte"
    );

    wkg_push(
        &registry,
        &registry.reference("wkg/redis:2.0.0"),
        Path::new(REDIS),
    )
    .success();
    let fetched = Host::new()
        .run(&["render", "-p", &oci(registry.host(), "wkg/redis:2.0.0")])
        .success();
    let local = Host::new().run(&["render", "-p", REDIS]).success();
    assert!(
        fetched.stdout == local.stdout,
        "what wkg published renders as the file"
    );
}

#[test]
fn a_basic_auth_registry_takes_docker_config_credentials_and_never_shows_them() {
    let password = "Pa55:w0rd-do-not-print";
    let registry = Registry::with_basic_auth("mathison", password);
    let tag = oci(registry.host(), "private/postgres:1.0");
    let encoded = STANDARD.encode(format!("mathison:{password}"));
    let hidden = |run: Run| {
        for secret in [password, encoded.as_str()] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "the credential is never shown:\n{}\n{}",
                run.stdout,
                run.stderr
            );
        }
        run
    };

    // The credentials in $DOCKER_CONFIG/config.json: push and render work, with -v too.
    let config = tempfile::tempdir().expect("temp dir");
    registry.write_docker_config(config.path());
    let docker_config = [("DOCKER_CONFIG", config.path().as_os_str())];
    let publisher = Host::new();
    let run =
        hidden(run_with(&publisher, &docker_config, &["-v", "push", POSTGRES, &tag]).success());
    let pushed = run.stdout.trim().to_string();
    let consumer = Host::new();
    let run = hidden(run_with(&consumer, &docker_config, &["-v", "render", "-p", &tag]).success());
    let local = Host::new().run(&["render", "-p", POSTGRES]).success();
    assert!(run.stdout == local.stdout, "the private plugin rendered");
    hidden(run_with(&consumer, &docker_config, &["-v", "inspect", &tag]).success());

    // $REGISTRY_AUTH_FILE, in the same format, is read too.
    let auth_file = config.path().join("config.json");
    let run = hidden(
        run_with(
            &Host::new(),
            &[("REGISTRY_AUTH_FILE", auth_file.as_os_str())],
            &["-v", "render", "-p", &pushed],
        )
        .success(),
    );
    assert!(run.stdout == local.stdout);

    // No credentials anywhere: refused, saying what was tried, nothing cached.
    let host = Host::new();
    let empty_config = tempfile::tempdir().expect("temp dir");
    let no_credentials = [("DOCKER_CONFIG", empty_config.path().as_os_str())];
    let run = hidden(
        run_with(&host, &no_credentials, &["-v", "render", "-p", &tag]).failure("unauthorized"),
    );
    one_error_naming(&run, &tag);
    assert!(
        run.stderr.contains("anonymous access") && run.stderr.contains("$DOCKER_CONFIG"),
        "names the credential source tried:\n{}",
        run.stderr
    );
    let run = host.run(&["render", "-p", &pushed]).failure("unauthorized");
    one_error_naming(&run, &pushed);
    assert!(run.stderr.contains("anonymous access"), "{}", run.stderr);
    assert!(
        blobs(&host).is_empty(),
        "nothing is cached: {:?}",
        blobs(&host)
    );

    // A wrong password: refused, naming the file, never the password.
    let wrong = tempfile::tempdir().expect("temp dir");
    fs::write(
        wrong.path().join("config.json"),
        serde_json::json!({ "auths": { registry.host(): {
            "auth": STANDARD.encode(format!("mathison:{password}-nope"))
        } } })
        .to_string(),
    )
    .expect("write config.json");
    let wrong_config = [("DOCKER_CONFIG", wrong.path().as_os_str())];
    let run = hidden(
        run_with(&host, &wrong_config, &["-v", "render", "-p", &tag]).failure("unauthorized"),
    );
    one_error_naming(&run, &tag);
    assert!(run.stderr.contains("config.json"), "{}", run.stderr);
    assert!(blobs(&host).is_empty(), "{:?}", blobs(&host));

    // A push without credentials, or with wrong ones, is refused as unauthorized too.
    for env in [&no_credentials, &wrong_config] {
        let run =
            hidden(run_with(&host, env, &["-v", "push", POSTGRES, &tag]).failure("unauthorized"));
        one_error_naming(&run, &tag);
    }
}

#[test]
fn bad_references_and_bad_registries_fail_in_one_line_and_leave_no_partial_blob() {
    let registry = Registry::anonymous();
    let publisher = Host::new();
    push(
        &publisher,
        POSTGRES,
        &oci(registry.host(), "plugins/postgres:1.0"),
    );
    push_container_image(&registry, "images/tool", "1.0");
    // A plugin whose layer the registry serves damaged: the store refuses it.
    push(
        &publisher,
        REDIS,
        &oci(registry.host(), "damaged/redis:1.0"),
    );
    let redis = fs::read(REDIS).expect("read the redis plugin");
    let stored = registry.blob_path(&digest(&redis));
    let mut damaged = redis.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0xff;
    fs::write(&stored, &damaged).expect("damage the registry's copy");

    let hanging = HangingServer::start();
    let garbage = GarbageServer::start();
    let unreachable = format!("127.0.0.1:{}", closed_port());
    let at = |name: &str| oci(registry.host(), name);
    let absent = format!(
        "{}@{}",
        at("plugins/postgres"),
        digest(b"no manifest has this digest")
    );
    let redis_digest = digest(&redis);
    let cases: Vec<(&str, String, Vec<&str>, Vec<&str>)> = vec![
        (
            "unknown tag",
            at("plugins/postgres:9.9.9"),
            vec![],
            vec!["not found in the registry"],
        ),
        (
            "unknown repository",
            at("nothing/here:1.0"),
            vec![],
            vec!["not found in the registry"],
        ),
        (
            "unknown digest",
            absent,
            vec![],
            vec!["not found in the registry"],
        ),
        (
            "container image",
            at("images/tool:1.0"),
            vec![],
            vec!["not a Wasm plugin", "ordinary container image"],
        ),
        (
            "over the size limit",
            at("plugins/postgres:1.0"),
            vec!["--max-plugin-size", "100Ki"],
            vec!["over the limit"],
        ),
        (
            "layer damaged in the registry",
            at("damaged/redis:1.0"),
            vec![],
            vec!["has digest", "but its manifest pins", &redis_digest],
        ),
        (
            "hanging server",
            oci(&hanging.host(), "plugins/postgres:1.0"),
            vec!["--registry-timeout", "2s"],
            vec!["did not answer within"],
        ),
        (
            "garbage server",
            oci(&garbage.host(), "plugins/postgres:1.0"),
            vec![],
            vec!["not the OCI distribution API"],
        ),
        (
            "unreachable registry",
            oci(&unreachable, "plugins/postgres:1.0"),
            vec![],
            vec!["cannot reach the registry"],
        ),
        (
            "no repository",
            format!("oci://{}", registry.host()),
            vec![],
            vec!["malformed plugin reference"],
        ),
        (
            "no registry host",
            "oci://postgres:1.0".to_string(),
            vec![],
            vec!["malformed plugin reference"],
        ),
        (
            "upper-case repository",
            at("Plugins/Postgres:1.0"),
            vec![],
            vec!["malformed plugin reference"],
        ),
        (
            "short digest",
            at("plugins/postgres@sha256:abc123"),
            vec![],
            vec!["malformed plugin reference"],
        ),
        (
            "other algorithm",
            format!("{}@md5:{}", at("plugins/postgres"), "0".repeat(32)),
            vec![],
            vec!["malformed plugin reference"],
        ),
        (
            "empty tag",
            at("plugins/postgres:"),
            vec![],
            vec!["malformed plugin reference"],
        ),
    ];
    // Every case is tried, and every problem reported, before the test fails.
    let mut problems = Vec::new();
    for (case, reference, flags, needles) in &cases {
        let host = Host::new();
        let mut args = vec!["render", "-p", reference.as_str()];
        args.extend(flags);
        let started = Instant::now();
        let run = host.run(&args);
        let elapsed = started.elapsed();
        eprintln!(
            "{case}: {elapsed:?}: {:?}: {}",
            run.code,
            run.stderr.trim_end()
        );
        let mut problem = |what: String| problems.push(format!("{case} ({reference}): {what}"));
        if run.code != Some(1) {
            problem(format!("exit {:?}, not 1", run.code));
        }
        for needle in needles {
            if !run.stderr.contains(needle) {
                problem(format!("stderr lacks {needle:?}: {}", run.stderr));
            }
        }
        if !run.stdout.is_empty() {
            problem(format!("something rendered: {}", run.stdout));
        }
        let errors: Vec<&str> = run
            .stderr
            .lines()
            .filter(|line| line.starts_with("error: "))
            .collect();
        if !matches!(errors.as_slice(), [error] if error.contains(reference.as_str())) {
            problem(format!(
                "not one error line naming the reference: {}",
                run.stderr
            ));
        }
        if run.stderr.contains("panicked") {
            problem(format!("a panic: {}", run.stderr));
        }
        for blob in blobs(&host) {
            let name = blob.file_name().map(|n| n.to_string_lossy().into_owned());
            let verified = name.as_ref().is_some_and(|name| {
                fs::read(&blob).is_ok_and(|bytes| digest(&bytes) == format!("sha256:{name}"))
            });
            if !verified {
                problem(format!("{} is left in the blob store", blob.display()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        !garbage.requests().is_empty(),
        "the garbage server was asked"
    );
    assert!(hanging.connections() > 0, "the hanging server was reached");
}

#[test]
fn push_refuses_a_file_that_is_not_a_plugin_before_contacting_the_registry() {
    let hanging = HangingServer::start();
    let target = oci(&hanging.host(), "plugins/bad:1.0");
    let host = Host::new();
    let text = host.path("notes.wasm");
    fs::write(&text, "these are notes, not a component\n").expect("write a text file");
    let text = text.to_str().expect("a UTF-8 path").to_string();
    for (file, needle) in [
        (text.as_str(), "not a WebAssembly component"),
        (HTTP_IMPORT, "wasi:http/outgoing-handler"),
        (EVIL_IMPORT, "evil:net/socket"),
    ] {
        let run = host
            .run(&["push", "--registry-timeout", "2s", file, &target])
            .failure(needle);
        let name = Path::new(file)
            .file_name()
            .and_then(OsStr::to_str)
            .expect("a file name");
        one_error_naming(&run, name);
        assert!(
            !run.stderr.contains("oci://"),
            "about the file {name}, not the registry:\n{}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        assert_eq!(
            hanging.connections(),
            0,
            "{name}: the registry was not contacted"
        );
    }
    assert!(
        blobs(&host).is_empty(),
        "nothing stored: {:?}",
        blobs(&host)
    );

    // The same target does catch a push that gets as far as the registry.
    let run = host
        .run(&["push", "--registry-timeout", "2s", POSTGRES, &target])
        .failure("did not answer within");
    one_error_naming(&run, &target);
    let deadline = Instant::now() + Duration::from_secs(10);
    while hanging.connections() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(hanging.connections() > 0, "the real plugin reached it");
}

#[test]
fn the_lock_pins_a_local_plugin_file_and_locked_fails_on_any_change() {
    let host = Host::new();
    fs::copy(POSTGRES, host.path("postgres.wasm")).expect("copy the postgres plugin");
    let project = "apiVersion: mathison.dev/v1alpha1\n\
                   kind: Project\n\
                   plugins:\n\
                   \x20 - name: postgres\n\
                   \x20   source: ./postgres.wasm\n";
    fs::write(host.path("mathison.yaml"), project).expect("write mathison.yaml");

    host.run(&["render", "--locked"]).failure("is missing");
    assert!(!host.path("mathison.lock").exists());

    let first = host.run(&["render"]).success();
    assert!(
        first.stderr.contains("note: wrote mathison.lock"),
        "{}",
        first.stderr
    );
    let lock_text = fs::read_to_string(host.path("mathison.lock")).expect("mathison.lock");
    let lock: Value = serde_yaml::from_str(&lock_text).expect("a YAML lock");
    let file = fs::read(POSTGRES).expect("read the postgres plugin");
    assert_eq!(lock["lockVersion"], 1, "{lock_text}");
    assert_eq!(lock["plugins"][0]["name"], "postgres", "{lock_text}");
    assert_eq!(
        lock["plugins"][0]["source"], "./postgres.wasm",
        "{lock_text}"
    );
    assert_eq!(
        lock["plugins"][0]["digest"],
        digest(&file).as_str(),
        "{lock_text}"
    );
    assert_eq!(lock["plugins"][0]["size"], file.len(), "{lock_text}");
    assert!(lock["plugins"][0].get("layer").is_none(), "{lock_text}");

    let locked = host.run(&["render", "--locked"]).success();
    assert!(locked.stdout == first.stdout);
    assert!(
        !locked.stderr.contains("wrote"),
        "nothing written: {}",
        locked.stderr
    );

    // The file changes: --locked checks its hash before loading it.
    let mut changed = file.clone();
    changed.extend_from_slice(b"appended");
    fs::write(host.path("postgres.wasm"), &changed).expect("change the plugin file");
    let run = host
        .run(&["render", "--locked"])
        .failure("has sha256")
        .failure("pins");
    assert!(
        run.stderr.contains(&digest(&changed)) && run.stderr.contains(&digest(&file)),
        "names both hashes:\n{}",
        run.stderr
    );
    assert_eq!(
        fs::read_to_string(host.path("mathison.lock")).expect("mathison.lock"),
        lock_text,
        "--locked never writes the lock"
    );
    fs::copy(POSTGRES, host.path("postgres.wasm")).expect("restore the plugin");

    // The project changes: --locked fails, a render writes the lock again.
    fs::copy(REDIS, host.path("redis.wasm")).expect("copy the redis plugin");
    fs::write(
        host.path("mathison.yaml"),
        format!("{project}  - name: redis\n    source: ./redis.wasm\n"),
    )
    .expect("add redis");
    host.run(&["render", "--locked"]).failure("out of date");
    assert_eq!(
        fs::read_to_string(host.path("mathison.lock")).expect("mathison.lock"),
        lock_text
    );
    let both = host.run(&["render"]).success();
    assert!(
        both.stderr.contains("note: wrote mathison.lock"),
        "{}",
        both.stderr
    );
    let lock: Value =
        serde_yaml::from_str(&fs::read_to_string(host.path("mathison.lock")).expect("lock"))
            .expect("a YAML lock");
    assert_eq!(lock["plugins"][1]["name"], "redis");
    assert_eq!(
        lock["plugins"][1]["digest"],
        digest(&fs::read(REDIS).expect("read")).as_str()
    );
    host.run(&["render", "--locked"]).success();
}

#[test]
fn project_file_errors_name_their_line_and_column() {
    let host = Host::new();
    fs::copy(POSTGRES, host.path("postgres.wasm")).expect("copy the postgres plugin");
    let head = "apiVersion: mathison.dev/v1alpha1\nkind: Project\n";
    let plugin = "  - name: postgres\n    source: ./postgres.wasm\n";
    let cases = [
        (
            "unknown top-level key",
            format!("{head}namespce: data\nplugins:\n{plugin}"),
            "mathison.yaml:3:1:",
            "unknown field `namespce`",
        ),
        (
            "unknown plugin key",
            format!("{head}plugins:\n{plugin}    colour: blue\n"),
            "mathison.yaml:6:5:",
            "unknown field `colour`",
        ),
        (
            "wrong type",
            format!("{head}plugins:\n{plugin}    values: 5\n"),
            "mathison.yaml:6:5:",
            "invalid type",
        ),
        (
            "plugins not a list",
            format!("{head}plugins: {{postgres: {{}}}}\n"),
            "mathison.yaml:3:",
            "invalid type",
        ),
        (
            "plugin listed twice",
            format!("{head}plugins:\n{plugin}{plugin}"),
            "mathison.yaml:6:5:",
            "listed twice",
        ),
    ];
    for (case, text, at, needle) in cases {
        fs::write(host.path("mathison.yaml"), &text).expect("write mathison.yaml");
        let run = host.run(&["render"]).failure(needle);
        assert!(
            run.stderr.starts_with(&format!("error: {at}")),
            "{case}: the error names {at}:\n{}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{case}");
        assert!(
            !host.path("mathison.lock").exists(),
            "{case}: no lock is written"
        );
    }

    // A name that is not the plugin's own.
    fs::write(
        host.path("mathison.yaml"),
        format!("{head}plugins:\n  - name: redis\n    source: ./postgres.wasm\n"),
    )
    .expect("write mathison.yaml");
    let run = host.run(&["render"]).failure("\"postgres\"");
    assert!(run.stderr.contains("\"redis\""), "{}", run.stderr);
    assert!(run.stdout.is_empty());

    // The schema editors use knows the file's keys.
    let schema = host.run(&["schema", "project"]).success();
    let schema: Value = serde_json::from_str(&schema.stdout).expect("a JSON Schema");
    for key in ["apiVersion", "kind", "plugins", "valuesFiles"] {
        assert!(schema["properties"].get(key).is_some(), "{key}: {schema:#}");
    }
}

#[test]
fn compile_of_a_registry_plugin_fills_the_code_cache_and_leaves_the_store_to_blobs() {
    let registry = Registry::anonymous();
    let tag = oci(registry.host(), "plugins/redis:1.0");
    push(&Host::new(), REDIS, &tag);
    let host = Host::new();
    let compiled = host.run(&["-v", "compile", &tag]).success();
    assert!(
        compiled.stderr.contains("compiled code: Miss"),
        "{}",
        compiled.stderr
    );
    assert_only_verified_blobs(&host, "after compile");
    assert_eq!(blobs(&host).len(), 2, "the manifest and the layer");
    let rendered = host.run(&["-v", "render", "-p", &tag]).success();
    assert!(
        rendered.stderr.contains("compiled code: Hit"),
        "{}",
        rendered.stderr
    );
}
