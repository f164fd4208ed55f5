//! The memo of plugin answers: a render whose inputs are unchanged is answered without running
//! (or loading) any plugin, and a change in any input the answer depends on runs it again.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::support::{Host, POSTGRES, REDIS, Run, tree};

/// What `-v` said of `plugin`'s compiled code and memo.
fn outcome(run: &Run, plugin: &str) -> (String, String) {
    let line = run
        .stderr
        .lines()
        .find(|line| line.starts_with(plugin) && line.contains("compiled code: "))
        .unwrap_or_else(|| panic!("no -v line for {plugin}:\n{}", run.stderr));
    let field = |name: &str| {
        let rest = &line[line.find(name).expect("the field") + name.len()..];
        rest.split([';', ')'])
            .next()
            .unwrap_or_default()
            .to_string()
    };
    (field("compiled code: "), field("memo: "))
}

/// The memo's files but its ledger (`.size`).
fn memo_entries(host: &Host) -> Vec<PathBuf> {
    let memo = host.cache.path().join("memo");
    if memo.exists() {
        let mut entries = tree(&memo);
        entries.retain(|path| !path.ends_with(".size"));
        entries
    } else {
        Vec::new()
    }
}

#[test]
fn unchanged_inputs_are_answered_without_loading_any_plugin() {
    let host = Host::new();
    let args = ["-v", "render", "-p", POSTGRES, "-p", REDIS];
    let cold = host.run(&args).success();
    for plugin in ["mathison_plugin_postgres", "mathison_plugin_redis"] {
        assert_eq!(outcome(&cold, plugin), ("Miss".into(), "Miss".into()));
    }
    let warm = host.run(&args).success();
    for plugin in ["mathison_plugin_postgres", "mathison_plugin_redis"] {
        assert_eq!(outcome(&warm, plugin), ("not loaded".into(), "Hit".into()));
    }
    assert_eq!(warm.stdout, cold.stdout);
    // What the plugins logged is replayed as if they ran.
    let normalised = |run: &Run| {
        run.stderr
            .lines()
            .filter(|line| !line.contains("compiled code: "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(normalised(&warm), normalised(&cold));
}

#[test]
fn a_change_in_any_input_is_a_miss() {
    let host = Host::new();
    let render = |extra: &[&str]| {
        let mut args = vec!["-v", "render", "-p", POSTGRES, "-p", REDIS];
        args.extend_from_slice(extra);
        host.run(&args).success()
    };
    let base = render(&[]);
    // A value of one plugin: that plugin runs again (and loads its code), the other does not.
    let changed = render(&["--set", "redis.maxmemoryPolicy=noeviction"]);
    assert_eq!(
        outcome(&changed, "mathison_plugin_redis"),
        ("Hit".into(), "Miss".into())
    );
    assert_eq!(
        outcome(&changed, "mathison_plugin_postgres"),
        ("not loaded".into(), "Hit".into())
    );
    assert_ne!(changed.stdout, base.stdout);
    // The render context, and a limit under which a call could fail.
    for extra in [
        &["--namespace", "elsewhere"][..],
        &["--instance", "other"],
        &["--max-output", "15Mi"],
        &["--max-memory", "255Mi"],
        &["--timeout", "9s"],
    ] {
        let run = render(extra);
        for plugin in ["mathison_plugin_postgres", "mathison_plugin_redis"] {
            assert_eq!(outcome(&run, plugin).1, "Miss", "{extra:?}");
        }
    }
    // Back to the first inputs: answered from the memo again, the same bytes.
    let again = render(&[]);
    assert_eq!(outcome(&again, "mathison_plugin_redis").1, "Hit");
    assert_eq!(again.stdout, base.stdout);
}

/// `plugin` copied into the test's folder with a custom section appended: other bytes, the
/// same plugin.
fn with_custom_section(host: &Host, plugin: &str, content: &[u8]) -> String {
    let mut bytes = fs::read(plugin).expect("the plugin");
    let name = b"mathison-test";
    let payload_len = 1 + name.len() + content.len();
    assert!(payload_len < 128, "one-byte LEB128 length");
    bytes.extend_from_slice(&[0, payload_len as u8, name.len() as u8]);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(content);
    let copy = host.path(&format!(
        "{}-{}.wasm",
        Path::new(plugin)
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a name"),
        String::from_utf8_lossy(content)
    ));
    fs::write(&copy, bytes).expect("write the copy");
    copy.to_str().expect("utf-8").to_string()
}

#[test]
fn a_changed_byte_of_the_plugin_is_a_miss() {
    let host = Host::new();
    let first = with_custom_section(&host, REDIS, b"1");
    let second = with_custom_section(&host, REDIS, b"2");
    let run = |plugin: &str| host.run(&["-v", "render", "-p", plugin]).success();
    let one = run(&first);
    assert_eq!(outcome(&run(&first), "mathison_plugin_redis-1").1, "Hit");
    let two = run(&second);
    assert_eq!(outcome(&two, "mathison_plugin_redis-2").1, "Miss");
    assert_eq!(one.stdout, two.stdout, "the same plugin renders the same");
}

#[test]
fn corrupt_entries_are_recomputed_and_no_cache_bypasses_the_memo() {
    let host = Host::new();
    let args = ["-v", "render", "-p", REDIS];
    let reference = host.run(&args).success();
    let entries = memo_entries(&host);
    // The plugin's fingerprint is a fourth entry when its file settled before the render.
    assert!(
        (3..=4).contains(&entries.len()),
        "an info and a render answer and the render's text: {entries:?}"
    );
    for entry in &entries {
        let mut bytes = fs::read(entry).expect("an entry");
        let last = bytes.len() - 2;
        bytes[last] ^= 0x01;
        fs::write(entry, bytes).expect("damage the entry");
    }
    let recomputed = host.run(&args).success();
    assert_eq!(
        outcome(&recomputed, "mathison_plugin_redis"),
        ("Hit".into(), "Miss".into())
    );
    assert_eq!(recomputed.stdout, reference.stdout);
    assert_eq!(
        outcome(&host.run(&args).success(), "mathison_plugin_redis").1,
        "Hit"
    );

    let fresh = Host::new();
    let bypassed = fresh
        .run(&["-v", "render", "--no-cache", "-p", REDIS])
        .success();
    assert_eq!(outcome(&bypassed, "mathison_plugin_redis").1, "Off");
    assert_eq!(bypassed.stdout, reference.stdout);
    assert!(
        memo_entries(&fresh).is_empty(),
        "--no-cache writes no answer"
    );
}

#[test]
fn two_processes_filling_the_memo_at_once_agree() {
    let host = Host::new();
    let args = ["render", "-p", POSTGRES, "-p", REDIS];
    let runs: Vec<Run> = thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| host.run(&args).success()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a render"))
            .collect()
    });
    assert_eq!(runs[0].stdout, runs[1].stdout);
    let warm = host.run(&[&["-v"][..], &args].concat()).success();
    assert_eq!(outcome(&warm, "mathison_plugin_redis").1, "Hit");
    assert_eq!(warm.stdout, runs[0].stdout);
    assert!(
        memo_entries(&host)
            .iter()
            .all(|path| !path.to_string_lossy().contains(".tmp-")),
        "no temporary file is left"
    );
}

/// Inputs the plugins never see still change the text: each is a miss with its own output,
/// and the first render's text is given back when the inputs are the first ones again.
#[test]
fn inputs_of_the_text_alone_are_misses_too() {
    let host = Host::new();
    let values = host.path("values.yaml");
    fs::write(&values, "redis:\n  maxmemoryPolicy: noeviction\n").expect("write values");
    let values = values.to_str().expect("utf-8");
    let render = |extra: &[&str]| {
        let mut args = vec!["render", "-p", REDIS, "-f", values];
        args.extend_from_slice(extra);
        host.run(&args).success()
    };
    let base = render(&[]);
    let provenance = render(&["--provenance"]);
    assert!(provenance.stdout.contains("mathison.dev/provenance"));
    let json = render(&["--format", "json"]);
    assert!(json.stdout.starts_with('{'), "{}", json.stdout);
    let out = host.path("out");
    render(&["-o", out.to_str().expect("utf-8")]);
    assert!(out.join("redis.yaml").is_file());
    // The values file rewritten at the same path.
    fs::write(values, "redis:\n  maxmemoryPolicy: allkeys-lru\n").expect("write values");
    let edited = render(&[]);
    assert!(edited.stdout.contains("allkeys-lru") && !edited.stdout.contains("noeviction"));
    fs::write(values, "redis:\n  maxmemoryPolicy: noeviction\n").expect("write values");
    assert_eq!(render(&[]).stdout, base.stdout);
}

/// A plugin file rewritten in place (the same path and size, its modification time set back)
/// after the memo took its fingerprint from its stamp: the change time tells, and the new
/// bytes are compiled and run.
#[test]
fn a_plugin_rewritten_in_place_is_read_again() {
    let host = Host::new();
    let first = with_custom_section(&host, REDIS, b"1");
    let second = fs::read(with_custom_section(&host, REDIS, b"2")).expect("the second plugin");
    // The fingerprint is kept once the file has settled (its change time two seconds old).
    thread::sleep(Duration::from_millis(2100));
    let args = ["-v", "render", "-p", &first];
    host.run(&args).success();
    let before = memo_entries(&host).len();
    assert_eq!(
        outcome(&host.run(&args).success(), "mathison_plugin_redis-1"),
        ("not loaded".into(), "Hit".into())
    );
    assert_eq!(
        memo_entries(&host).len(),
        before,
        "answered, nothing new kept"
    );

    let modified = fs::metadata(&first)
        .and_then(|m| m.modified())
        .expect("mtime");
    fs::write(&first, &second).expect("rewrite the plugin");
    File::options()
        .append(true)
        .open(&first)
        .and_then(|file| file.set_modified(modified))
        .expect("set the time back");
    let rewritten = host.run(&args).success();
    assert_eq!(
        outcome(&rewritten, "mathison_plugin_redis-1"),
        ("Miss".into(), "Miss".into()),
        "bytes never seen: compiled and run"
    );
}

/// The text of a render with secret inputs holds their values: it is never kept.
#[test]
fn a_render_with_secret_inputs_keeps_no_text() {
    let host = Host::new();
    let password = "k33p-0ut-of-the-memo";
    fs::write(host.path("pg-password"), password).expect("write password");
    let args = [
        "render",
        "-p",
        POSTGRES,
        "--secret-input",
        "postgres.postgres-password=file:pg-password",
    ];
    // The URL's start, 42 bytes: whole base64 groups, a prefix of the Secret's value.
    let encoded = STANDARD.encode(format!("postgresql://mathison:{password}"));
    let first = host.run(&args).success();
    assert!(first.stdout.contains(&encoded), "{}", first.stdout);
    assert_eq!(host.run(&args).success().stdout, first.stdout);
    for entry in memo_entries(&host) {
        let text = fs::read_to_string(&entry).expect("an entry");
        assert!(
            !text.contains(password) && !text.contains(&encoded),
            "{} holds the secret",
            entry.display()
        );
    }
}
