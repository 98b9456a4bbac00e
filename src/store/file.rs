//! A directory of JSON records, one file per session, each written atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;

use super::{SessionRecord, SessionStore, StoreError};

/// Keeps each record in `<dir>/<encoded name>.json`.
///
/// A write goes to a temporary file in the same directory, which is flushed to disk, renamed over
/// the record, and the directory synced: a crash at any point leaves the old record or the new
/// one, never a torn one. Leftover temporary files are ignored when listing. Names are encoded
/// reversibly (bytes outside `[A-Za-z0-9_-]` as `%XX`), so any name is a safe file name.
#[derive(Clone, Debug)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// A store in `dir`, created (with its parents) if missing.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when the directory cannot be created.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            action: "creating",
            path: dir.clone(),
            source,
        })?;
        Ok(Self { dir })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{}.json", encode(name)))
    }
}

pub(crate) fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() { "%".to_owned() } else { out }
}

fn read_record(path: &Path) -> Result<Option<SessionRecord>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| StoreError::Corrupt {
                    path: path.to_owned(),
                    source,
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::Io {
            action: "reading",
            path: path.to_owned(),
            source,
        }),
    }
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    fn io<'p>(
        action: &'static str,
        path: &'p Path,
    ) -> impl FnOnce(std::io::Error) -> StoreError + 'p {
        move |source| StoreError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(io("creating a temporary file in", dir))?;
    tmp.write_all(bytes).map_err(io("writing", tmp.path()))?;
    tmp.as_file()
        .sync_all()
        .map_err(io("syncing", tmp.path()))?;
    tmp.persist(path).map_err(|e| StoreError::Io {
        action: "renaming over",
        path: path.to_owned(),
        source: e.error,
    })?;
    // The rename itself is durable only once the directory is synced.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing", dir))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Other(format!("store task failed: {e}")))?
}

impl SessionStore for FileStore {
    fn load<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        let path = self.path_of(name);
        Box::pin(blocking(move || read_record(&path)))
    }

    fn save<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        let (dir, path) = (self.dir.clone(), self.path_of(&record.name));
        let bytes = serde_json::to_vec_pretty(record);
        Box::pin(async move {
            let bytes =
                bytes.map_err(|e| StoreError::Other(format!("could not encode record: {e}")))?;
            blocking(move || write_atomically(&dir, &path, &bytes)).await
        })
    }

    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        let path = self.path_of(name);
        Box::pin(blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Io {
                action: "removing",
                path,
                source,
            }),
        }))
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<SessionRecord>, StoreError>> {
        let dir = self.dir.clone();
        Box::pin(blocking(move || {
            let entries = std::fs::read_dir(&dir).map_err(|source| StoreError::Io {
                action: "listing",
                path: dir.clone(),
                source,
            })?;
            let mut records = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|source| StoreError::Io {
                    action: "listing",
                    path: dir.clone(),
                    source,
                })?;
                let path = entry.path();
                let is_record = path.extension().is_some_and(|e| e == "json")
                    && !path
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(".tmp-"));
                if is_record && let Some(record) = read_record(&path)? {
                    records.push(record);
                }
            }
            records.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(records)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trips_any_name_and_lists() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path().join("nested/store")).unwrap();
        let mut rec = SessionRecord::new("user/42 ü", "fp1");
        rec.session_id = Some("abc".into());
        store.save(&rec).await.unwrap();
        assert_eq!(store.load("user/42 ü").await.unwrap(), Some(rec.clone()));
        assert_eq!(store.load("other").await.unwrap(), None);
        let other = SessionRecord::new("a", "fp2");
        store.save(&other).await.unwrap();
        let names: Vec<_> = store
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, vec!["a".to_owned(), "user/42 ü".to_owned()]);
        store.delete("a").await.unwrap();
        store.delete("a").await.unwrap();
        assert_eq!(store.list().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_torn_temporary_file_never_replaces_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let rec = SessionRecord::new("s", "fp");
        store.save(&rec).await.unwrap();
        // A crash mid-write leaves only a partial temporary file behind.
        std::fs::write(
            dir.path().join(".tmp-crash.partial"),
            b"{\"name\":\"s\",\"sess",
        )
        .unwrap();
        assert_eq!(store.load("s").await.unwrap(), Some(rec.clone()));
        assert_eq!(store.list().await.unwrap(), vec![rec]);
    }

    #[tokio::test]
    async fn a_corrupt_record_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("s.json"), b"not json").unwrap();
        let err = store.load("s").await.unwrap_err();
        assert!(err.to_string().contains("s.json"), "{err}");
    }
}
