//! Memoised plugin calls. In the sandbox a plugin is a pure function of its bytes, its input
//! (the validated configuration and the render context) and the limits it runs under: it has
//! a frozen clock, fixed randomness and nothing else to read. So the answer of a call can be
//! kept, and given again for the same inputs without creating an engine or instantiating
//! anything, as build systems do. The answer includes the plugin's log lines, so that `-v`
//! shows them as if it ran.
//!
//! An entry is `<dir>/<key>.json`: a header line (format, key, length and BLAKE3 of the body)
//! and the body, the answer as JSON. The file is named by the key and also holds it, so an
//! entry copied under another name (foreign), cut short (truncated) or changed on disk
//! (corrupt) is never trusted: it reads as a miss, and the call runs and replaces it. Entries
//! are written to a temporary file and renamed into place, so two processes filling one entry
//! at once each publish a whole file, and a reader sees one or the other. The folder is kept
//! under a size bound by removing the least recently used entries: a hit refreshes an entry's
//! modification time. Measuring the folder reads every entry's metadata (with 2,000 entries, a
//! render that changed one value took 29 ms instead of 13), so it is measured only when its
//! ledger (`<dir>/.size`: the size it had when last measured plus every entry written since,
//! updated under a file lock) passes the bound, or is missing or unreadable.
//!
//! The memo also keeps the fingerprint (BLAKE3) of each plugin file it was given, by the
//! file's identity and state as `stat` reports them, so that a render that changed nothing
//! does not read and hash every plugin to find its answers; see [`FileStamp`].

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Bumped when what an entry holds changes meaning, so that older entries miss.
const FORMAT: u32 = 1;
/// The size the memo folder is kept under by default.
pub const DEFAULT_MAX_BYTES: u64 = 128 << 20;
/// A temporary file older than this was left by a process that died; it may be removed.
const STALE_TEMPORARY: Duration = Duration::from_secs(3600);
const TEMPORARY_PREFIX: &str = ".tmp-";

/// A file whose change time is more recent than this may still change within the same tick
/// of the file system's clock, leaving its stamp as it was; its fingerprint is not kept. Far
/// above any clock tick (Linux's coarse clock: 1–10 ms; ext3: 1 s).
const SETTLED: Duration = Duration::from_secs(2);

/// The ledger's name in the folder: not an entry, never evicted.
const LEDGER: &str = ".size";

/// The folder of memoised answers.
#[derive(Debug)]
pub struct Memo {
    dir: PathBuf,
    max_bytes: u64,
    /// The ledger, opened on the first write: the mutex orders this process's updates, the
    /// file's lock other processes'.
    ledger: Mutex<Option<File>>,
}

/// What the memo did for one call (shown with `-v`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoOutcome {
    /// `--no-cache`, or no cache folder.
    Off,
    /// Answered from the memo: the plugin did not run.
    Hit,
    /// The plugin ran; its answer was kept (or could not be, which only costs the next run).
    Miss,
}

/// Everything one answer depends on, hashed. Each part is length-prefixed, so that no two
/// different lists of parts hash alike (`"ab", "c"` is not `"a", "bc"`).
#[derive(Debug, Clone)]
pub struct Key(blake3::Hasher);

impl Key {
    /// A key for calls named `call` (`info`, `render`): calls of different kinds never share
    /// an entry.
    pub fn new(call: &str) -> Self {
        let mut key = Self(blake3::Hasher::new());
        key.part(format!("mathison-host memo {FORMAT}").as_bytes())
            .part(call.as_bytes());
        key
    }

    pub fn part(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    pub(crate) fn hex(&self) -> String {
        self.0.finalize().to_hex().to_string()
    }
}

/// A file's identity (device and inode) and state (size, modification and change times, in
/// nanoseconds) as `stat` reports them. Writing a file changes its change time, which only
/// the clock's owner can set back, so a file whose stamp is the same as when it was read has
/// the same contents, as version control systems assume of their working trees. A file read
/// while it settled (see [`SETTLED`]) is read again next time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileStamp {
    device: u64,
    inode: u64,
    size: u64,
    modified: i128,
    changed: i128,
}

impl FileStamp {
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let metadata = fs::metadata(path)?;
        let nanos =
            |seconds: i64, nanos: i64| i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
        Ok(Self {
            device: metadata.dev(),
            inode: metadata.ino(),
            size: metadata.size(),
            modified: nanos(metadata.mtime(), metadata.mtime_nsec()),
            changed: nanos(metadata.ctime(), metadata.ctime_nsec()),
        })
    }

    fn key(&self) -> Key {
        let mut key = Key::new("file");
        key.part(&self.device.to_le_bytes())
            .part(&self.inode.to_le_bytes());
        key
    }

    /// Whether the file last changed long enough before `now` that a later change cannot
    /// leave the same stamp.
    pub fn settled(&self, now: SystemTime) -> bool {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as i128);
        self.changed < now - SETTLED.as_nanos() as i128
    }
}

/// A file's fingerprint as the memo keeps it: with the stamp the file had when it was read.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Fingerprint {
    stamp: FileStamp,
    blake3: String,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Header {
    format: u32,
    key: String,
    len: u64,
    blake3: String,
}

impl Memo {
    pub fn new(dir: PathBuf, max_bytes: u64) -> Self {
        Self {
            dir,
            max_bytes,
            ledger: Mutex::new(None),
        }
    }

    /// The BLAKE3 of the file stamped `stamp`, if it was kept when the file had that stamp.
    pub fn fingerprint(&self, stamp: &FileStamp) -> Option<blake3::Hash> {
        let kept: Fingerprint = self.get(&stamp.key())?;
        (kept.stamp == *stamp)
            .then(|| blake3::Hash::from_hex(&kept.blake3).ok())
            .flatten()
    }

    /// Keeps `blake3` as the fingerprint of the file stamped `stamp`, which had that stamp
    /// both before and after it was read, unless it changed too recently to be told apart from
    /// a later change.
    pub fn keep_fingerprint(&self, stamp: &FileStamp, blake3: &blake3::Hash) {
        if stamp.settled(SystemTime::now()) {
            let kept = Fingerprint {
                stamp: stamp.clone(),
                blake3: blake3.to_hex().to_string(),
            };
            self.put(&stamp.key(), &kept);
        }
    }

    /// The answer kept for `key`, if an intact entry holds it.
    pub fn get<T: DeserializeOwned>(&self, key: &Key) -> Option<T> {
        let key = key.hex();
        let path = self.entry_path(&key);
        let bytes = fs::read(&path).ok()?;
        let newline = bytes.iter().position(|&b| b == b'\n')?;
        let header: Header = serde_json::from_slice(&bytes[..newline]).ok()?;
        let body = &bytes[newline + 1..];
        let intact = header.format == FORMAT
            && header.key == key
            && header.len == body.len() as u64
            && header.blake3 == blake3::hash(body).to_hex().as_str();
        if !intact {
            return None;
        }
        let value = serde_json::from_slice(body).ok()?;
        // Least recently used is judged by modification time; failing to refresh it only
        // makes the entry an earlier candidate for eviction.
        if let Ok(file) = File::options().append(true).open(&path) {
            let _ = file.set_modified(SystemTime::now());
        }
        Some(value)
    }

    /// Keeps `value` as the answer for `key`, then counts it in the ledger and trims the
    /// folder to its bound if the ledger says it may be over. Failing to keep it is not an
    /// error: the next run calls the plugin again.
    pub fn put<T: Serialize>(&self, key: &Key, value: &T) {
        let Ok(written) = self.write(&key.hex(), value) else {
            return;
        };
        let mut ledger = self.ledger.lock().unwrap_or_else(PoisonError::into_inner);
        if ledger.is_none() {
            *ledger = self.open_ledger().ok();
        }
        // A ledger that cannot be read is rebuilt by measuring the folder; one that cannot be
        // opened or locked (a file system without locks) leaves it measured at every write.
        let Some(ledger) = ledger.as_ref().filter(|ledger| ledger.lock().is_ok()) else {
            self.evict();
            return;
        };
        let counted = match read_ledger(ledger) {
            Some(known) if known.saturating_add(written) <= self.max_bytes => {
                write_ledger(ledger, known.saturating_add(written))
            }
            _ => write_ledger(ledger, self.evict()),
        };
        let _ = ledger.unlock();
        if counted.is_err() {
            self.evict();
        }
    }

    /// Opens the ledger, created if missing. Its updates are made one at a time, under its
    /// lock, so that it never says less than the folder holds (an entry written again under
    /// its key is counted twice, which only trims sooner).
    fn open_ledger(&self) -> std::io::Result<File> {
        File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.dir.join(LEDGER))
    }

    /// Writes the entry for `key`; returns its size.
    fn write<T: Serialize>(&self, key: &str, value: &T) -> std::io::Result<u64> {
        let body = serde_json::to_vec(value).map_err(std::io::Error::other)?;
        let header = Header {
            format: FORMAT,
            key: key.to_string(),
            len: body.len() as u64,
            blake3: blake3::hash(&body).to_hex().to_string(),
        };
        fs::create_dir_all(&self.dir)?;
        let mut file = tempfile::Builder::new()
            .prefix(TEMPORARY_PREFIX)
            .tempfile_in(&self.dir)?;
        let header = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
        file.write_all(&header)?;
        file.write_all(b"\n")?;
        file.write_all(&body)?;
        file.persist(self.entry_path(key))?;
        Ok((header.len() + 1 + body.len()) as u64)
    }

    /// Removes the least recently used entries until the folder is within its bound, and
    /// temporary files left by processes that died; returns the size of the entries left.
    fn evict(&self) -> u64 {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        let now = SystemTime::now();
        let mut kept: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
        for entry in entries.flatten() {
            let (Ok(metadata), path) = (entry.metadata(), entry.path()) else {
                continue;
            };
            let used = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            let name = entry.file_name();
            if name == LEDGER {
                continue;
            }
            if name.to_string_lossy().starts_with(TEMPORARY_PREFIX) {
                if now.duration_since(used).unwrap_or_default() > STALE_TEMPORARY {
                    let _ = fs::remove_file(&path);
                }
                continue;
            }
            if metadata.is_file() {
                kept.push((used, metadata.len(), path));
            }
        }
        let mut total: u64 = kept.iter().map(|(_, len, _)| len).sum();
        kept.sort();
        for (_, len, path) in kept {
            if total <= self.max_bytes {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
        total
    }

    fn entry_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }
}

/// The size the ledger records, if it holds one.
fn read_ledger(ledger: &File) -> Option<u64> {
    let mut text = [0; 21];
    ledger.read_exact_at(&mut text, 0).ok()?;
    std::str::from_utf8(text.strip_suffix(b"\n")?)
        .ok()?
        .parse()
        .ok()
}

/// Writes `size` over the ledger's number. Fixed width, so that the file is rewritten in place
/// by one write: truncating it first made every entry's write twice as slow.
fn write_ledger(ledger: &File, size: u64) -> std::io::Result<()> {
    ledger.write_all_at(format!("{size:020}\n").as_bytes(), 0)
}

#[cfg(test)]
mod tests;
