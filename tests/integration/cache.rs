//! The compiled-artifact cache: a hit renders the same bytes; corrupt or foreign entries are
//! recompiled and replaced, never trusted.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::{Host, POSTGRES, REDIS, Run};

/// The compiled artifacts in the cache (each has a `.cwasm.json` manifest beside it).
fn entries(host: &Host) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = fs::read_dir(host.cache.path())
        .map(|dir| dir.map(|e| e.expect("entry").path()).collect())
        .unwrap_or_default();
    entries.retain(|path| path.extension().is_some_and(|ext| ext == "cwasm"));
    entries.sort();
    entries
}

/// Asserts that `-v` reported the compiled code of a plugin as coming from `outcome`.
fn assert_compiled(run: &Run, outcome: &str) {
    assert!(
        run.stderr.contains(&format!("compiled code: {outcome}")),
        "expected compiled code: {outcome}\n{}",
        run.stderr
    );
}

fn manifest_of(artifact: &Path) -> PathBuf {
    let mut manifest = artifact.as_os_str().to_owned();
    manifest.push(".json");
    manifest.into()
}

#[test]
fn a_cache_hit_renders_identical_bytes() {
    let host = Host::new();
    let cold = host
        .run(&["-v", "render", "-p", POSTGRES, "-p", REDIS])
        .success();
    assert_compiled(&cold, "Miss");
    assert_eq!(entries(&host).len(), 2, "one entry per plugin");
    for entry in entries(&host) {
        let manifest: serde_json::Value =
            serde_json::from_slice(&fs::read(manifest_of(&entry)).expect("manifest"))
                .expect("manifest is JSON");
        let name = manifest["info"]["value"]["name"].as_str();
        assert!(matches!(name, Some("postgres" | "redis")), "{manifest}");
    }
    host.forget_answers();
    let warm = host
        .run(&["-v", "render", "-p", POSTGRES, "-p", REDIS])
        .success();
    assert_compiled(&warm, "Hit");
    assert_eq!(cold.stdout, warm.stdout);
    // Logs and notes too: what `info` said is served from the entry, as it was first said.
    assert_eq!(
        cold.stderr
            .replace("compiled code: Miss", "compiled code: Hit"),
        warm.stderr
    );
    let uncached = host
        .run(&["render", "--no-cache", "-p", POSTGRES, "-p", REDIS])
        .success();
    assert_eq!(cold.stdout, uncached.stdout);
}

#[test]
fn corrupt_truncated_and_foreign_entries_are_recompiled() {
    let host = Host::new();
    let reference = host.run(&["render", "-p", REDIS]).success().stdout;
    let [entry] = entries(&host).try_into().expect("one entry");
    let good = fs::read(&entry).expect("read entry");

    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0xff;
    let truncated = good[..good.len() / 3].to_vec();
    let foreign = b"\x7fELF not a cache entry at all".to_vec();

    for damaged in [flipped, truncated, foreign, Vec::new()] {
        fs::write(&entry, &damaged).expect("damage entry");
        host.forget_answers();
        let run = host.run(&["-v", "render", "-p", REDIS]).success();
        assert_compiled(&run, "Replaced");
        assert_eq!(run.stdout, reference);
        assert_eq!(
            fs::read(&entry).expect("read entry"),
            good,
            "the entry was rewritten"
        );
    }
}

#[test]
fn an_unwritable_cache_still_renders() {
    let host = Host::new();
    let blocked = host.path("not-a-dir");
    fs::write(&blocked, "a file where the cache folder should be").expect("write");
    let run = host
        .run(&[
            "-v",
            "render",
            "--cache-dir",
            blocked.to_str().expect("utf-8"),
            "-p",
            REDIS,
        ])
        .success();
    assert_compiled(&run, "StoreFailed");
}

/// Copies the postgres and redis plugins into the test's folder, compiles them there, and
/// returns their new paths.
fn precompiled(host: &Host) -> [String; 2] {
    let paths = [POSTGRES, REDIS].map(|plugin| {
        let copy = host.path(
            Path::new(plugin)
                .file_name()
                .expect("file name")
                .to_str()
                .expect("utf-8"),
        );
        fs::copy(plugin, &copy).expect("copy plugin");
        copy.to_str().expect("utf-8").to_string()
    });
    host.run(&["compile", &paths[0], &paths[1]]).success();
    paths
}

#[test]
fn precompiled_plugins_render_the_same_bytes_without_compiling_or_caching() {
    let host = Host::new();
    let [postgres, redis] = precompiled(&host);
    for plugin in [&postgres, &redis] {
        assert!(Path::new(plugin).with_extension("cwasm").is_file());
        assert!(
            Path::new(&format!(
                "{}.json",
                Path::new(plugin).with_extension("cwasm").display()
            ))
            .is_file()
        );
    }
    let reference = host
        .run(&["render", "--no-cache", "-p", &postgres, "-p", &redis])
        .success()
        .stdout;
    let run = host
        .run(&[
            "-v",
            "render",
            "--allow-precompiled",
            "-p",
            &postgres,
            "-p",
            &redis,
        ])
        .success();
    assert_eq!(
        run.stderr.matches("compiled code: Precompiled").count(),
        2,
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, reference);
    assert!(
        entries(&host).is_empty(),
        "nothing was compiled into the cache"
    );
}

#[test]
fn precompiled_code_is_ignored_unless_allowed_and_intact() {
    let host = Host::new();
    let [postgres, redis] = precompiled(&host);
    let run = host.run(&["-v", "render", "-p", &redis]).success();
    assert_compiled(&run, "Miss");

    // Another plugin's code under this plugin's name, then a damaged artifact: both compiled.
    let redis_code = Path::new(&redis).with_extension("cwasm");
    let postgres_code = Path::new(&postgres).with_extension("cwasm");
    fs::copy(&postgres_code, &redis_code).expect("copy artifact");
    fs::copy(manifest_of(&postgres_code), manifest_of(&redis_code)).expect("copy manifest");
    let mut damaged = fs::read(&postgres_code).expect("read artifact");
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0xff;
    fs::write(&postgres_code, damaged).expect("damage artifact");
    for plugin in [&redis, &postgres] {
        let run = host
            .run(&[
                "-v",
                "render",
                "--no-cache",
                "--allow-precompiled",
                "-p",
                plugin,
            ])
            .success();
        assert_compiled(&run, "Disabled");
    }
}

#[test]
fn an_entry_without_info_gets_it_on_the_next_hit() {
    let host = Host::new();
    host.run(&["render", "-p", REDIS]).success();
    let [entry] = entries(&host).try_into().expect("one entry");
    let manifest_path = manifest_of(&entry);
    let read = || -> serde_json::Value {
        serde_json::from_slice(&fs::read(&manifest_path).expect("manifest")).expect("JSON")
    };
    let mut manifest = read();
    manifest["info"] = serde_json::Value::Null;
    fs::write(&manifest_path, manifest.to_string()).expect("write manifest");

    host.forget_answers();
    let run = host.run(&["-v", "render", "-p", REDIS]).success();
    assert_compiled(&run, "Hit");
    assert_eq!(read()["info"]["value"]["name"], "redis");
}

/// A hit serves the `info` its entry keeps, not a new call's: the defaults kept there (edited
/// by hand here, as only the cache's owner can) decide the render.
#[test]
fn a_hit_serves_the_info_its_entry_keeps() {
    let host = Host::new();
    let first = host.run(&["render", "-p", REDIS]).success();
    assert!(first.stdout.contains("allkeys-lru"), "{}", first.stdout);
    let [entry] = entries(&host).try_into().expect("one entry");
    let manifest_path = manifest_of(&entry);
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(&manifest_path).expect("manifest")).expect("JSON");
    let defaults = &mut manifest["info"]["value"]["default_config"];
    let mut config: serde_json::Value =
        serde_json::from_str(defaults.as_str().expect("JSON text")).expect("JSON");
    config["maxmemoryPolicy"] = "noeviction".into();
    *defaults = config.to_string().into();
    fs::write(&manifest_path, manifest.to_string()).expect("write manifest");

    host.forget_answers();
    let run = host.run(&["-v", "render", "-p", REDIS]).success();
    assert_compiled(&run, "Hit");
    assert!(run.stdout.contains("noeviction"), "{}", run.stdout);
}
