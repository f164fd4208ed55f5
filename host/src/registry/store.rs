//! Blobs kept by their digest under the cache directory, as an OCI image layout keeps them
//! (`blobs/sha256/HEX`). A blob is hashed while it is written and again whenever it is read, so
//! a damaged, truncated or swapped file is never used: it is deleted and fetched again.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tempfile::NamedTempFile;

use super::reference::Digest;

/// Why a blob could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use the blob store {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("is larger than the limit of {limit} bytes (--max-plugin-size)")]
    TooLarge { limit: u64 },
    #[error("has digest {actual}, not the {expected} it was fetched as")]
    Mismatch { expected: Digest, actual: Digest },
}

/// The content-addressed blob store.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    /// The store under `cache_dir` (created on first write).
    pub fn new(cache_dir: &Path) -> Self {
        Self {
            dir: cache_dir.join("oci").join("blobs").join("sha256"),
        }
    }

    fn path_of(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    /// The blob's path when it is stored and intact; a blob that no longer matches its digest
    /// is removed, so the caller fetches it again.
    pub fn verified_path(&self, digest: &Digest) -> Result<Option<PathBuf>, StoreError> {
        let path = self.path_of(digest);
        Ok(self.read_verified(digest)?.map(|_| path))
    }

    /// The blob's bytes when it is stored and intact (see [`verified_path`](Self::verified_path)).
    pub fn read_verified(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path_of(digest);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        if Digest::of(&bytes) == *digest {
            return Ok(Some(bytes));
        }
        fs::remove_file(&path).map_err(|source| StoreError::Io { path, source })?;
        Ok(None)
    }

    /// Starts writing the blob `expected`, refusing more than `limit` bytes.
    pub fn writer(&self, expected: Digest, limit: u64) -> Result<BlobWriter, StoreError> {
        let io_error = |source| StoreError::Io {
            path: self.dir.clone(),
            source,
        };
        fs::create_dir_all(&self.dir).map_err(io_error)?;
        // In the store's own directory, so that committing is a rename on one file system.
        let file = tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(&self.dir)
            .map_err(io_error)?;
        Ok(BlobWriter {
            file,
            hasher: Sha256::new(),
            written: 0,
            limit,
            destination: self.path_of(&expected),
            expected,
        })
    }

    /// Stores `bytes` as the blob they hash to.
    pub fn put(&self, bytes: &[u8]) -> Result<PathBuf, StoreError> {
        let mut writer = self.writer(Digest::of(bytes), u64::MAX)?;
        writer.write(bytes)?;
        writer.commit()
    }
}

/// A blob being written. Dropped before [`commit`](Self::commit), it leaves nothing behind:
/// the partial file is deleted.
#[derive(Debug)]
pub struct BlobWriter {
    file: NamedTempFile,
    hasher: Sha256,
    written: u64,
    limit: u64,
    expected: Digest,
    destination: PathBuf,
}

impl BlobWriter {
    /// Appends `chunk`, or fails (and stops reading) as soon as the limit is passed.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        self.written = self.written.saturating_add(chunk.len() as u64);
        if self.written > self.limit {
            return Err(StoreError::TooLarge { limit: self.limit });
        }
        self.hasher.update(chunk);
        self.file.write_all(chunk).map_err(|source| StoreError::Io {
            path: self.file.path().to_owned(),
            source,
        })
    }

    /// Checks the digest and moves the blob into place; a mismatch deletes it.
    pub fn commit(self) -> Result<PathBuf, StoreError> {
        let actual = Digest::from_sha256(self.hasher.finalize().into());
        if actual != self.expected {
            return Err(StoreError::Mismatch {
                expected: self.expected,
                actual,
            });
        }
        let io_error = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { path, source }
        };
        self.file
            .as_file()
            .sync_all()
            .map_err(io_error(&self.destination))?;
        // Another process may have stored the same blob meanwhile: same bytes, either wins.
        self.file
            .persist(&self.destination)
            .map_err(|e| e.error)
            .map_err(io_error(&self.destination))?;
        Ok(self.destination)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_and_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::new(dir.path());
        let digest = Digest::of(b"plugin bytes");
        assert!(store.verified_path(&digest).unwrap().is_none());
        let path = store.put(b"plugin bytes").unwrap();
        assert_eq!(store.verified_path(&digest).unwrap(), Some(path.clone()));
        fs::write(&path, b"plugin bytez").unwrap();
        assert!(store.verified_path(&digest).unwrap().is_none());
        assert!(!path.exists(), "a damaged blob is removed");
    }

    #[test]
    fn a_wrong_or_oversized_blob_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::new(dir.path());
        let mut writer = store.writer(Digest::of(b"expected"), 100).unwrap();
        writer.write(b"something else").unwrap();
        let error = writer.commit().unwrap_err();
        assert!(matches!(error, StoreError::Mismatch { .. }), "{error}");

        let mut writer = store.writer(Digest::of(b"expected"), 4).unwrap();
        assert!(matches!(
            writer.write(b"expected").unwrap_err(),
            StoreError::TooLarge { limit: 4 }
        ));
        drop(writer);
        let left: Vec<_> = fs::read_dir(dir.path().join("oci/blobs/sha256"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
