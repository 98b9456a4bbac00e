//! A directory of JSON records, one file per session, each written atomically.

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;

use super::transcript::{LeaseRow, ttl_ms};
use super::{
    Lease, LeaseStatus, SessionRecord, SessionStore, StoreError, TranscriptEntry, TranscriptFile,
    now_ms,
};

/// Keeps each record in `<dir>/<encoded name>.json`, each transcript file in
/// `<dir>/transcripts/<encoded name>/<encoded session id>/<encoded file>` (JSONL, appended and
/// synced), and each lease in `<dir>/leases/<encoded name>.json` (written atomically).
///
/// Transcript appends and lease changes are serialized within the process; several processes on
/// one directory are not coordinated (use a database store for a fleet).
///
/// A write goes to a temporary file in the same directory, which is flushed to disk, renamed over
/// the record, and the directory synced: a crash at any point leaves the old record or the new
/// one, never a torn one. Leftover temporary files are ignored when listing. Names are encoded
/// reversibly (bytes outside `[A-Za-z0-9_-]` as `%XX`), so any name is a safe file name.
#[derive(Clone, Debug)]
pub struct FileStore {
    dir: PathBuf,
    /// One lock per session name: it serializes that session's read-check-write sequences
    /// (lease changes, fenced writes, appends); sessions never wait on each other.
    locks: Arc<DashMap<String, Arc<Mutex<()>>>>,
    /// The keys already in each transcript file, with the file's length when they were read:
    /// an append checks its entries against these instead of reading the whole file again (it
    /// reads it again when the length differs: another process wrote to it).
    keys: Arc<DashMap<PathBuf, (u64, HashSet<String>)>>,
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
        Ok(Self {
            dir,
            locks: Default::default(),
            keys: Default::default(),
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{}.json", encode(name)))
    }

    fn transcript_dir(&self, name: &str, session_id: &str) -> PathBuf {
        self.dir
            .join("transcripts")
            .join(encode(name))
            .join(encode(session_id))
    }

    fn lease_path(&self, name: &str) -> PathBuf {
        self.dir
            .join("leases")
            .join(format!("{}.json", encode(name)))
    }

    /// Runs `f` under the lock of session `name`, on a blocking thread.
    fn locked<T: Send + 'static>(
        &self,
        name: &str,
        f: impl FnOnce(&FileStore) -> Result<T, StoreError> + Send + 'static,
    ) -> impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static {
        let me = self.clone();
        let lock = self.locks.entry(name.to_owned()).or_default().clone();
        blocking(move || {
            let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
            f(&me)
        })
    }

    fn read_lease(&self, name: &str) -> Result<LeaseRow, StoreError> {
        let path = self.lease_path(name);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| StoreError::Corrupt { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LeaseRow::default()),
            Err(source) => Err(StoreError::Io {
                action: "reading",
                path,
                source,
            }),
        }
    }

    fn write_lease(&self, name: &str, row: &LeaseRow) -> Result<(), StoreError> {
        let dir = self.dir.join("leases");
        create_dir(&dir)?;
        let bytes = serde_json::to_vec(row)
            .map_err(|e| StoreError::Other(format!("could not encode a lease: {e}")))?;
        write_atomically(&dir, &self.lease_path(name), &bytes)
    }
}

fn create_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
        action: "creating",
        path: dir.to_owned(),
        source,
    })
}

pub(crate) fn decode(encoded: &str) -> Option<String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if encoded == "%" {
                return Some(String::new());
            }
            let hex = encoded.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn read_lines(path: &Path) -> Result<Vec<TranscriptEntry>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(TranscriptEntry::from_line)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(StoreError::Io {
            action: "reading",
            path: path.to_owned(),
            source,
        }),
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
        let transcripts = self.dir.join("transcripts").join(encode(name));
        Box::pin(blocking(move || match std::fs::remove_file(&path) {
            // Its conversations go with it (the record first: a crash between the two leaves
            // unreferenced transcripts, never a record whose conversation is gone).
            Ok(()) => match std::fs::remove_dir_all(&transcripts) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(StoreError::Io {
                    action: "removing",
                    path: transcripts,
                    source,
                }),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Io {
                action: "removing",
                path,
                source,
            }),
        }))
    }

    fn holds_transcripts(&self) -> bool {
        true
    }

    fn append_entries<'a>(
        &'a self,
        name: &'a str,
        session_id: &'a str,
        file: &'a str,
        entries: &'a [TranscriptEntry],
        fence: Option<u64>,
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        let (name, file, entries) = (name.to_owned(), file.to_owned(), entries.to_vec());
        let dir = self.transcript_dir(&name, session_id);
        Box::pin(self.locked(&name.clone(), move |me| {
            me.read_lease(&name)?.check(&name, fence)?;
            create_dir(&dir)?;
            let path = dir.join(encode(&file));
            let on_disk = std::fs::metadata(&path).map_or(0, |m| m.len());
            // Taken out while this append runs (no map lock held over the file's I/O); an
            // append that fails leaves none, so the next one reads the file again.
            let mut cached = me.keys.remove(&path).map(|(_, c)| c).unwrap_or_default();
            if cached.0 != on_disk || (on_disk > 0 && cached.1.is_empty()) {
                // First append here, or the file changed behind this store: read its keys.
                let keys = read_lines(&path)?.into_iter().map(|e| e.key).collect();
                cached = (on_disk, keys);
            }
            let mut text = String::new();
            let mut new_keys = Vec::new();
            for e in &entries {
                if !cached.1.contains(&e.key) && !new_keys.contains(&&e.key) {
                    text.push_str(&e.line);
                    text.push('\n');
                    new_keys.push(&e.key);
                }
            }
            let added = new_keys.len();
            if added == 0 {
                me.keys.insert(path, cached);
                return Ok(0);
            }
            let io = |action: &'static str, path: &Path| {
                let path = path.to_owned();
                move |source| StoreError::Io {
                    action,
                    path,
                    source,
                }
            };
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(&path)
                .map_err(io("opening", &path))?;
            // A torn last line (a crash mid-append) must not swallow the first new one.
            let len = f.metadata().map_err(io("reading", &path))?.len();
            if len > 0 {
                use std::io::{Read, Seek, SeekFrom};
                let mut last = [0u8; 1];
                f.seek(SeekFrom::Start(len - 1))
                    .map_err(io("reading", &path))?;
                f.read_exact(&mut last).map_err(io("reading", &path))?;
                if last[0] != b'\n' {
                    text.insert(0, '\n');
                }
            }
            f.write_all(text.as_bytes())
                .map_err(io("appending to", &path))?;
            f.sync_all().map_err(io("syncing", &path))?;
            cached.0 = len + text.len() as u64;
            cached.1.extend(new_keys.into_iter().cloned());
            me.keys.insert(path, cached);
            Ok(added)
        }))
    }

    fn load_entries<'a>(
        &'a self,
        name: &'a str,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<TranscriptFile>, StoreError>> {
        let dir = self.transcript_dir(name, session_id);
        let session_id = session_id.to_owned();
        Box::pin(blocking(move || {
            let listing = match std::fs::read_dir(&dir) {
                Ok(listing) => listing,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(source) => {
                    return Err(StoreError::Io {
                        action: "listing",
                        path: dir,
                        source,
                    });
                }
            };
            let mut files = Vec::new();
            for entry in listing {
                let entry = entry.map_err(|source| StoreError::Io {
                    action: "listing",
                    path: dir.clone(),
                    source,
                })?;
                let encoded = entry.file_name().to_string_lossy().into_owned();
                let Some(file) = decode(&encoded) else {
                    continue;
                };
                files.push(TranscriptFile {
                    file,
                    entries: read_lines(&entry.path())?,
                });
            }
            Ok(super::main_file_first(files, &session_id))
        }))
    }

    fn save_fenced<'a>(
        &'a self,
        record: &'a SessionRecord,
        fence: Option<u64>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let (path, name) = (self.path_of(&record.name), record.name.clone());
        let bytes = serde_json::to_vec_pretty(record);
        Box::pin(async move {
            let bytes =
                bytes.map_err(|e| StoreError::Other(format!("could not encode record: {e}")))?;
            self.locked(&name.clone(), move |me| {
                me.read_lease(&name)?.check(&name, fence)?;
                write_atomically(&me.dir, &path, &bytes)
            })
            .await
        })
    }

    fn acquire_lease<'a>(
        &'a self,
        name: &'a str,
        owner: &'a str,
        ttl: std::time::Duration,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        let (name, owner) = (name.to_owned(), owner.to_owned());
        Box::pin(self.locked(&name.clone(), move |me| {
            let mut row = me.read_lease(&name)?;
            let lease = row.acquire(&name, &owner, ttl_ms(ttl), now_ms())?;
            me.write_lease(&name, &row)?;
            Ok(lease)
        }))
    }

    fn renew_lease<'a>(
        &'a self,
        lease: &'a Lease,
        ttl: std::time::Duration,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        let lease = lease.clone();
        Box::pin(self.locked(&lease.name.clone(), move |me| {
            let mut row = me.read_lease(&lease.name)?;
            let renewed = row.renew(&lease, ttl_ms(ttl), now_ms())?;
            me.write_lease(&lease.name, &row)?;
            Ok(renewed)
        }))
    }

    fn list_leases(&self) -> BoxFuture<'_, Result<Vec<LeaseStatus>, StoreError>> {
        // Lease files are replaced atomically: a listing needs no lock.
        let me = self.clone();
        Box::pin(blocking(move || {
            let dir = me.dir.join("leases");
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(source) => {
                    return Err(StoreError::Io {
                        action: "listing",
                        path: dir,
                        source,
                    });
                }
            };
            let now = now_ms();
            let mut list = Vec::new();
            for entry in entries {
                let path = entry
                    .map_err(|source| StoreError::Io {
                        action: "listing",
                        path: dir.clone(),
                        source,
                    })?
                    .path();
                if path.extension().is_none_or(|e| e != "json") {
                    continue;
                }
                let bytes = std::fs::read(&path).map_err(|source| StoreError::Io {
                    action: "reading",
                    path: path.clone(),
                    source,
                })?;
                let row: LeaseRow = serde_json::from_slice(&bytes)
                    .map_err(|source| StoreError::Corrupt { path, source })?;
                list.extend(row.status(now));
            }
            list.sort_by(|a, b| a.lease.name.cmp(&b.lease.name));
            Ok(list)
        }))
    }

    fn release_lease<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), StoreError>> {
        let lease = lease.clone();
        Box::pin(self.locked(&lease.name.clone(), move |me| {
            let mut row = me.read_lease(&lease.name)?;
            row.release(&lease);
            me.write_lease(&lease.name, &row)
        }))
    }

    fn revoke_lease<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Lease>, StoreError>> {
        let name = name.to_owned();
        Box::pin(self.locked(&name.clone(), move |me| {
            let mut row = me.read_lease(&name)?;
            let revoked = row.revoke();
            if revoked.is_some() {
                me.write_lease(&name, &row)?;
            }
            Ok(revoked)
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

    fn entry(uuid: &str) -> TranscriptEntry {
        TranscriptEntry::from_value(&serde_json::json!({"uuid": uuid, "type": "user"}))
    }

    #[tokio::test]
    async fn appends_stay_idempotent_when_another_store_writes_the_same_file() {
        // Two stores on one folder: two processes. Each remembers the keys it has seen; a file
        // that grew behind one's back is read again before its next append.
        let dir = tempfile::tempdir().unwrap();
        let a = FileStore::open(dir.path()).unwrap();
        let b = FileStore::open(dir.path()).unwrap();
        let add = |store: &FileStore, uuids: &[&str]| {
            let entries: Vec<TranscriptEntry> = uuids.iter().map(|u| entry(u)).collect();
            let store = store.clone();
            async move {
                store
                    .append_entries("s", "c", "c.jsonl", &entries, None)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(add(&a, &["u1"]).await, 1);
        assert_eq!(add(&b, &["u1", "u2"]).await, 1);
        assert_eq!(add(&a, &["u2", "u3"]).await, 1, "a read b's u2");
        assert_eq!(add(&a, &["u3"]).await, 0);
        let files = b.load_entries("s", "c").await.unwrap();
        let keys: Vec<&str> = files[0].entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["u1", "u2", "u3"]);
    }

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
