use std::thread;
use std::time::{Duration, SystemTime};

use super::*;

fn key(parts: &[&str]) -> Key {
    let mut key = Key::new("render");
    for part in parts {
        key.part(part.as_bytes());
    }
    key
}

fn memo(max_bytes: u64) -> (tempfile::TempDir, Memo) {
    let dir = tempfile::tempdir().expect("temp dir");
    let memo = Memo::new(dir.path().join("memo"), max_bytes);
    (dir, memo)
}

/// The folder's files but its ledger.
fn entries(memo: &Memo) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(&memo.dir)
        .map(|dir| {
            dir.flatten()
                .filter(|e| e.file_name() != LEDGER)
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths
}

fn size_of(paths: &[PathBuf]) -> u64 {
    paths
        .iter()
        .map(|p| fs::metadata(p).expect("a file").len())
        .sum()
}

fn ledger(memo: &Memo) -> Option<u64> {
    fs::read_to_string(memo.dir.join(LEDGER))
        .ok()?
        .trim_end()
        .parse()
        .ok()
}

/// Sets the modification time of the file at `path` (an entry's last use) `seconds_ago`.
fn age(path: &Path, seconds_ago: u64) {
    let file = File::options().append(true).open(path).expect("the file");
    file.set_modified(SystemTime::now() - Duration::from_secs(seconds_ago))
        .expect("set the time");
}

#[test]
fn an_answer_is_given_back_for_the_same_key_only() {
    let (_dir, memo) = memo(DEFAULT_MAX_BYTES);
    memo.put(&key(&["plugin", "config"]), &vec!["objects"]);
    assert_eq!(
        memo.get::<Vec<String>>(&key(&["plugin", "config"])),
        Some(vec!["objects".to_string()])
    );
    for other in [
        key(&["plugin", "config "]),
        key(&["plugin", "confif"]),
        key(&["plugi", "nconfig"]),
        key(&["plugin", "config", ""]),
    ] {
        assert_eq!(memo.get::<Vec<String>>(&other), None);
    }
    let mut info = Key::new("info");
    info.part(b"plugin").part(b"config");
    assert_eq!(
        memo.get::<Vec<String>>(&info),
        None,
        "calls never share entries"
    );
}

#[test]
fn a_corrupt_truncated_or_foreign_entry_is_never_trusted() {
    let (_dir, memo) = memo(DEFAULT_MAX_BYTES);
    let (first, second) = (key(&["a"]), key(&["b"]));
    memo.put(&first, &"first answer");
    memo.put(&second, &"second answer");
    let path = |key: &Key| memo.entry_path(&key.hex());
    let original = fs::read(path(&first)).expect("the entry");

    // A changed byte in the body: still JSON, still a string, but not what was kept.
    let flipped = String::from_utf8(original.clone())
        .expect("text")
        .replace("first answer", "first answeR");
    fs::write(path(&first), flipped).expect("write");
    assert_eq!(memo.get::<String>(&first), None);

    fs::write(path(&first), &original[..original.len() - 3]).expect("write");
    assert_eq!(memo.get::<String>(&first), None, "truncated");

    fs::write(path(&first), b"not an entry").expect("write");
    assert_eq!(memo.get::<String>(&first), None, "garbage");

    // The other entry copied under this one's name: intact, but for another key.
    fs::copy(path(&second), path(&first)).expect("copy");
    assert_eq!(memo.get::<String>(&first), None, "foreign");

    // Recomputed and kept again, it is trusted again.
    memo.put(&first, &"first answer");
    assert_eq!(memo.get::<String>(&first).as_deref(), Some("first answer"));
}

#[test]
fn processes_filling_one_entry_at_once_leave_one_whole_entry() {
    let (_dir, memo) = memo(DEFAULT_MAX_BYTES);
    let answer: Vec<u64> = (0..50_000).collect();
    thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..5 {
                    memo.put(&key(&["same"]), &answer);
                    // A reader racing the writers sees a whole answer or none.
                    if let Some(seen) = memo.get::<Vec<u64>>(&key(&["same"])) {
                        assert_eq!(seen, answer);
                    }
                }
            });
        }
    });
    assert_eq!(memo.get::<Vec<u64>>(&key(&["same"])), Some(answer));
    assert_eq!(entries(&memo).len(), 1, "no temporary file is left behind");
}

#[test]
fn the_folder_is_bounded_by_evicting_the_least_recently_used() {
    let (_dir, memo) = memo(3500);
    let answer = "x".repeat(900);
    let keys: Vec<Key> = ["one", "two", "three"].iter().map(|k| key(&[k])).collect();
    for (index, key) in keys.iter().enumerate() {
        memo.put(key, &answer);
        age(&memo.entry_path(&key.hex()), 100 - index as u64 * 10);
    }
    // "one" is the oldest by writing, but used last.
    assert!(memo.get::<String>(&keys[0]).is_some());
    memo.put(&key(&["four"]), &answer);
    assert!(
        memo.get::<String>(&keys[1]).is_none(),
        "least recently used"
    );
    assert!(memo.get::<String>(&keys[0]).is_some());
    assert!(memo.get::<String>(&keys[2]).is_some());
    assert!(memo.get::<String>(&key(&["four"])).is_some());
    let total = size_of(&entries(&memo));
    assert!(total <= 3500, "{total}");
    assert_eq!(ledger(&memo), Some(total));
}

/// Measuring the folder reads every entry's metadata; a write is counted in the ledger
/// instead, and the folder is measured only once the ledger passes the bound. A file the memo
/// did not write (here, an old one planted beside the entries) is found only then.
#[test]
fn the_folder_is_measured_only_when_its_ledger_passes_the_bound() {
    let (_dir, memo) = memo(3500);
    let answer = "x".repeat(900);
    memo.put(&key(&["one"]), &answer);
    let one = size_of(&entries(&memo));
    assert_eq!(ledger(&memo), Some(one), "a missing ledger is measured");
    let planted = memo.dir.join("planted.json");
    fs::write(&planted, "y".repeat(2000)).expect("plant a file");
    age(&planted, 1000);
    for name in ["two", "three"] {
        memo.put(&key(&[name]), &answer);
        assert!(planted.exists(), "not measured while under the bound");
    }
    assert_eq!(ledger(&memo), Some(3 * one), "every write counted");
    memo.put(&key(&["four"]), &answer);
    assert!(
        !planted.exists(),
        "measured over the bound: the least recently used goes"
    );
    let left = entries(&memo);
    assert_eq!(left.len(), 3, "{left:?}");
    assert_eq!(ledger(&memo), Some(size_of(&left)));
}

#[test]
fn a_missing_or_unreadable_ledger_is_rebuilt_by_measuring() {
    let (_dir, first) = memo(DEFAULT_MAX_BYTES);
    first.put(&key(&["one"]), &"an answer");
    for damage in [Some("many bytes\n"), Some(""), None] {
        match damage {
            Some(text) => fs::write(first.dir.join(LEDGER), text).expect("damage the ledger"),
            None => fs::remove_file(first.dir.join(LEDGER)).expect("remove the ledger"),
        }
        // Another process finds the ledger so.
        let memo = Memo::new(first.dir.clone(), DEFAULT_MAX_BYTES);
        memo.put(&key(&["two", &format!("{damage:?}")]), &"another answer");
        assert_eq!(ledger(&memo), Some(size_of(&entries(&memo))), "{damage:?}");
    }
}

/// Each writer opens the ledger on its own, as processes do; its lock makes their updates
/// one at a time, so that none is lost.
#[test]
fn writers_at_once_count_every_entry() {
    let (dir, first) = memo(DEFAULT_MAX_BYTES);
    // Written first, so that the ledger exists: a writer that finds none measures the folder,
    // which may then hold another's entry not counted yet (counted twice: the safe side).
    first.put(&key(&["first"]), &0);
    let memo_dir = dir.path().join("memo");
    thread::scope(|scope| {
        for writer in 0..8 {
            let memo_dir = &memo_dir;
            scope.spawn(move || {
                let memo = Memo::new(memo_dir.clone(), DEFAULT_MAX_BYTES);
                for answer in 0..10 {
                    memo.put(&key(&[&format!("{writer}/{answer}")]), &answer);
                }
            });
        }
    });
    let memo = Memo::new(memo_dir, DEFAULT_MAX_BYTES);
    let written = entries(&memo);
    assert_eq!(written.len(), 81);
    assert_eq!(ledger(&memo), Some(size_of(&written)));
}

/// The stamp of a file that last changed `seconds_ago`.
fn stamp_changed(seconds_ago: u64) -> FileStamp {
    let changed = SystemTime::now() - Duration::from_secs(seconds_ago);
    let nanos = changed
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as i128;
    FileStamp {
        device: 2049,
        inode: 1234,
        size: 1_000_000,
        modified: nanos,
        changed: nanos,
    }
}

#[test]
fn a_fingerprint_is_given_back_only_for_the_same_stamp() {
    let (_dir, memo) = memo(DEFAULT_MAX_BYTES);
    let stamp = stamp_changed(60);
    let hash = blake3::hash(b"plugin");
    memo.keep_fingerprint(&stamp, &hash);
    assert_eq!(memo.fingerprint(&stamp), Some(hash));
    type Change = fn(&mut FileStamp);
    let changes: [(&str, Change); 5] = [
        ("size", |s| s.size += 1),
        ("modified", |s| s.modified += 1),
        // What `touch -d` or a copy keeping times cannot set back.
        ("changed", |s| s.changed += 1),
        // Another file, or the same path replaced by a new file.
        ("inode", |s| s.inode += 1),
        ("device", |s| s.device += 1),
    ];
    for (what, change) in changes {
        let mut other = stamp.clone();
        change(&mut other);
        assert_eq!(memo.fingerprint(&other), None, "{what}");
    }
}

#[test]
fn a_file_that_changed_too_recently_is_not_fingerprinted() {
    let (_dir, memo) = memo(DEFAULT_MAX_BYTES);
    let recent = stamp_changed(0);
    memo.keep_fingerprint(&recent, &blake3::hash(b"plugin"));
    assert_eq!(memo.fingerprint(&recent), None);
    assert!(entries(&memo).is_empty(), "nothing is kept");
}

#[test]
fn a_real_files_stamp_follows_its_writes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("plugin.wasm");
    fs::write(&path, b"one").expect("write");
    let first = FileStamp::of(&path).expect("stamp");
    assert_eq!(FileStamp::of(&path).expect("stamp"), first, "stable");
    // The same size, and the modification time set back: the change time still moves.
    let modified = fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime");
    thread::sleep(Duration::from_millis(20));
    fs::write(&path, b"two").expect("write");
    File::options()
        .append(true)
        .open(&path)
        .and_then(|file| file.set_modified(modified))
        .expect("set the time back");
    let second = FileStamp::of(&path).expect("stamp");
    assert_eq!((second.size, second.modified), (first.size, first.modified));
    assert_ne!(second, first);
}
