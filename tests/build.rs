//! Compiles the plugins and the hostile fixtures for wasm32-wasip2, and the hostile `.wat`
//! components in tests/fixtures/wat, and writes their paths as constants. A separate target
//! directory keeps this nested cargo off the outer build's lock.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (constant, package, cargo's artifact name)
const GUESTS: &[(&str, &str, &str)] = &[
    (
        "POSTGRES",
        "mathison-plugin-postgres",
        "mathison_plugin_postgres",
    ),
    ("REDIS", "mathison-plugin-redis", "mathison_plugin_redis"),
    (
        "POSTGRES_BACKUP",
        "mathison-plugin-postgres-backup",
        "mathison_plugin_postgres_backup",
    ),
    (
        "HOSTILE",
        "mathison-fixture-hostile",
        "mathison_fixture_hostile",
    ),
    (
        "HOSTILE_INFO",
        "mathison-fixture-hostile-info",
        "mathison_fixture_hostile_info",
    ),
    (
        "INFO_LOOP",
        "mathison-fixture-info-loop",
        "mathison_fixture_info_loop",
    ),
    (
        "WIT_NEXT",
        "mathison-fixture-wit-next",
        "mathison_fixture_wit_next",
    ),
    ("MINIO", "mathison-fixture-minio", "mathison_fixture_minio"),
];

/// The behaviours of the hostile-info fixture, each a copy of its component with the behaviour
/// written over the marker in its data (tests/fixtures/hostile-info/src/lib.rs).
/// (constant, behaviour)
const INFO_BEHAVIOURS: &[(&str, &str)] = &[
    ("HOSTILE_INFO_REF_FAN_OUT", "ref-fan-out"),
    ("HOSTILE_INFO_SELF_REFERENCE", "self-reference"),
    ("HOSTILE_INFO_LOOKAROUND_PATTERN", "lookaround-pattern"),
    ("HOSTILE_INFO_MANY_KINDS", "many-kinds"),
    ("HOSTILE_INFO_REDIS", "redis"),
    ("HOSTILE_INFO_KUSTOMIZATION", "kustomization"),
    ("HOSTILE_INFO_TERMINAL", "terminal"),
    ("HOSTILE_INFO_BAD_KIND", "bad-kind"),
    ("HOSTILE_INFO_CLOCK", "clock"),
];
const INFO_MARKER: &[u8] = b"mathison-hostile-info:well-behaved";
const INFO_BEHAVIOUR_LEN: usize = 48;

/// (constant, file stem in tests/fixtures/wat)
const WAT_COMPONENTS: &[(&str, &str)] = &[
    ("EVIL_IMPORT", "evil-import"),
    ("HTTP_IMPORT", "http-import"),
];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned();
    let target_dir = root.join("target").join("guests");

    for watched in [
        "plugins",
        "wit",
        "tests/fixtures",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .args([
            "build",
            "--profile",
            "plugin",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir);
    for (_, package, _) in GUESTS {
        command.args(["-p", package]);
    }
    // Flags meant for the outer (native) build must not leak into the guests' build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
    ] {
        command.env_remove(var);
    }
    let output = command
        .output()
        .expect("cannot run cargo to build the test guests");
    if !output.status.success() {
        panic!(
            "building the test guests for wasm32-wasip2 failed (is the target installed? \
             `rustup target add wasm32-wasip2`):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let out_dir = target_dir.join("wasm32-wasip2").join("plugin");
    let mut constants = String::new();
    for (constant, package, artifact) in GUESTS {
        let path = out_dir.join(format!("{artifact}.wasm"));
        assert!(
            Path::new(&path).is_file(),
            "{} was not built",
            path.display()
        );
        push_constant(
            &mut constants,
            &format!("The `{package}` component."),
            constant,
            &path,
        );
    }
    let base = std::fs::read(out_dir.join("mathison_fixture_hostile_info.wasm"))
        .expect("cannot read the hostile-info fixture");
    let at = find_once(&base, INFO_MARKER);
    for (constant, behaviour) in INFO_BEHAVIOURS {
        let mut patched = base.clone();
        let mut field = format!("mathison-hostile-info:{behaviour}").into_bytes();
        assert!(field.len() <= INFO_BEHAVIOUR_LEN, "{behaviour} is too long");
        field.resize(INFO_BEHAVIOUR_LEN, 0);
        patched[at..at + INFO_BEHAVIOUR_LEN].copy_from_slice(&field);
        let stem = format!(
            "mathison_fixture_hostile_info_{}",
            behaviour.replace('-', "_")
        );
        let path = out_dir.join(format!("{stem}.wasm"));
        std::fs::write(&path, patched).expect("cannot write a hostile-info behaviour");
        push_constant(
            &mut constants,
            &format!("The hostile-info fixture with `info` behaviour `{behaviour}`."),
            constant,
            &path,
        );
    }

    // Written next to the guests (not into OUT_DIR) so that tests/hostile/report.sh finds them.
    let wat_dir = target_dir.join("wat");
    std::fs::create_dir_all(&wat_dir).expect("cannot create target/guests/wat");
    for (constant, stem) in WAT_COMPONENTS {
        let source = root.join("tests/fixtures/wat").join(format!("{stem}.wat"));
        let binary = wat::parse_file(&source)
            .unwrap_or_else(|e| panic!("{} does not assemble: {e}", source.display()));
        let path = wat_dir.join(format!("{stem}.wasm"));
        std::fs::write(&path, binary).expect("cannot write a .wat fixture's component");
        push_constant(
            &mut constants,
            &format!("The component of tests/fixtures/wat/{stem}.wat."),
            constant,
            &path,
        );
    }

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("artifacts.rs");
    std::fs::write(out, constants).expect("cannot write artifacts.rs");
}

/// Appends a documented constant holding `path` to the generated source.
fn push_constant(constants: &mut String, doc: &str, name: &str, path: &Path) {
    writeln!(constants, "/// {doc}").expect("write to String");
    writeln!(
        constants,
        "pub const {name}: &str = {:?};",
        path.display().to_string()
    )
    .expect("write to String");
}

/// Where `needle` occurs in `haystack`; it must occur exactly once.
fn find_once(haystack: &[u8], needle: &[u8]) -> usize {
    let mut found = haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, window)| *window == needle)
        .map(|(at, _)| at);
    let at = found
        .next()
        .expect("the hostile-info marker is in the component");
    assert!(
        found.next().is_none(),
        "the hostile-info marker occurs once"
    );
    at
}
