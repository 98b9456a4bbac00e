//! A session's conversation in the store: the mirror task that writes the CLI's
//! `transcript_mirror` frames into it, and the rehydration that writes them back before a resume.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use claude_protocol::ClaudeOptions;
use claude_protocol::transcript::{is_safe_relative_file, project_dir};
use claude_session::MirrorEvent;
use tokio::sync::mpsc;

use super::{SupervisorError, SupervisorEventKind, Tree, contained};
use crate::store::{StoreError, TranscriptEntry};

/// A batch goes to the store at the end of each turn, or once it holds this many entries …
const BATCH_ENTRIES: usize = 256;
/// … or this many bytes of entries.
const BATCH_BYTES: usize = 1 << 20;
/// Attempts of one flush before a turn's barrier gives up waiting (the entries stay in the
/// backlog and are retried in the background).
const ATTEMPTS: u32 = 4;
/// The first retry's delay (each further one is four times longer, up to [`MAX_RETRY`]).
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// The longest wait between two background retries while the store is down.
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Entries waiting for the store, by (conversation, file), each file's in the CLI's order.
#[derive(Default)]
struct Pending {
    files: BTreeMap<(String, String), Vec<TranscriptEntry>>,
    entries: usize,
    bytes: usize,
}

impl Pending {
    fn push(&mut self, key: (String, String), entry: TranscriptEntry) {
        self.bytes += entry.line.len();
        self.entries += 1;
        self.files.entry(key).or_default().push(entry);
    }

    /// Puts back what a flush could not store, ahead of what arrived meanwhile.
    fn put_back(&mut self, failed: BTreeMap<(String, String), Vec<TranscriptEntry>>) {
        for (key, mut entries) in failed {
            self.entries += entries.len();
            self.bytes += entries.iter().map(|e| e.line.len()).sum::<usize>();
            if let Some(later) = self.files.remove(&key) {
                entries.extend(later);
            }
            self.files.insert(key, entries);
        }
    }
}

/// A session's transcript entries on their way to the store, shared by all of its instances:
/// entries the store refused stay here (in order, ahead of later ones) until it takes them, so
/// a store that is down for a while loses nothing. One flush runs at a time.
#[derive(Default)]
pub(crate) struct Backlog {
    pending: std::sync::Mutex<Pending>,
    flushing: tokio::sync::Mutex<()>,
    /// A background retry is scheduled.
    retrying: std::sync::atomic::AtomicBool,
}

impl Backlog {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many entries wait for the store.
    pub(crate) fn len(&self) -> usize {
        self.pending().entries
    }
}

/// What one flush achieved.
enum Flushed {
    /// Everything is stored (or there was nothing to store).
    Stored,
    /// The store refused some entries for now: they are back in the backlog.
    Kept,
}

/// Runs until the session's reader drops its sink (the CLI is gone): batches entries per turn
/// and at the size limits, appends them (idempotent by key, retried), answers each turn's
/// barrier once its entries are stored or, with the store down, after a few attempts (the
/// entries stay in the backlog and are retried in the background until the store takes them).
pub(crate) async fn run(
    tree: Arc<Tree>,
    name: String,
    backlog: Arc<Backlog>,
    mut events: mpsc::UnboundedReceiver<MirrorEvent>,
) {
    while let Some(event) = events.recv().await {
        match event {
            MirrorEvent::Entries(frame) => {
                let Some(file) = frame.relative_file() else {
                    tracing::warn!(session = %name, path = %frame.file_path.display(), "a transcript_mirror frame outside a projects folder: ignored");
                    continue;
                };
                let session_id = conversation_of(&file);
                let full = {
                    let mut pending = backlog.pending();
                    for entry in &frame.entries {
                        pending.push(
                            (session_id.clone(), file.clone()),
                            TranscriptEntry::from_value(entry),
                        );
                    }
                    pending.entries >= BATCH_ENTRIES || pending.bytes >= BATCH_BYTES
                };
                if full {
                    flush_with_retries(&tree, &name, &backlog).await;
                }
            }
            MirrorEvent::TurnEnd { ack, .. } => {
                flush_with_retries(&tree, &name, &backlog).await;
                let _ = ack.send(());
            }
            _ => {}
        }
    }
    flush_with_retries(&tree, &name, &backlog).await;
}

/// Flushes, retrying a few times; if the store still refuses, reports it and leaves the rest
/// to a background retrier.
async fn flush_with_retries(tree: &Arc<Tree>, name: &str, backlog: &Arc<Backlog>) {
    if backlog.retrying.load(std::sync::atomic::Ordering::SeqCst) {
        // The store is known to be down (reported already): one attempt, and a turn does not
        // wait on the outage again; the retrier takes what is left.
        flush(tree, name, backlog, false).await;
        return;
    }
    let mut delay = FIRST_RETRY;
    for attempt in 1..=ATTEMPTS {
        match flush(tree, name, backlog, attempt == ATTEMPTS).await {
            Flushed::Stored => return,
            Flushed::Kept if attempt == ATTEMPTS => {}
            Flushed::Kept => {
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
        }
    }
    retry_in_background(tree.clone(), name.to_owned(), backlog.clone(), delay);
}

/// Retries the backlog until the store takes it (one retrier per session at a time); reports
/// the recovery. Ends with the tree (a last attempt first).
fn retry_in_background(tree: Arc<Tree>, name: String, backlog: Arc<Backlog>, first: Duration) {
    use std::sync::atomic::Ordering;
    if backlog.retrying.swap(true, Ordering::SeqCst) {
        return;
    }
    // Weak: a retrier does not keep a dropped tree alive.
    let tree = Arc::downgrade(&tree);
    tokio::spawn(async move {
        let mut delay = first.min(MAX_RETRY);
        loop {
            tokio::time::sleep(delay).await;
            let Some(tree) = tree.upgrade() else { break };
            let waiting = backlog.len();
            if let Flushed::Stored = flush(&tree, &name, &backlog, false).await {
                tracing::info!(session = %name, entries = waiting, "the store is back: the transcript backlog is stored");
                tree.emit(
                    Some(&name),
                    SupervisorEventKind::StoreRecovered { entries: waiting },
                );
                break;
            }
            if tree.shutting_down.load(Ordering::SeqCst) {
                tracing::error!(session = %name, entries = backlog.len(), "the tree stopped before the store came back: transcript entries not stored");
                break;
            }
            delay = (delay * 2).min(MAX_RETRY);
        }
        backlog.retrying.store(false, Ordering::SeqCst);
    });
}

/// The conversation a project-relative file belongs to: `<id>.jsonl` or `<id>/…`.
fn conversation_of(file: &str) -> String {
    let first = file.split('/').next().unwrap_or(file);
    first.strip_suffix(".jsonl").unwrap_or(first).to_owned()
}

/// One attempt to store the backlog. What the store refuses for now goes back into it (in
/// order); what it refuses for good (the session was taken over) is dropped. `report`: emit
/// [`SupervisorEventKind::StoreFailed`] for a refusal.
async fn flush(tree: &Tree, name: &str, backlog: &Backlog, report: bool) -> Flushed {
    let _one_at_a_time = backlog.flushing.lock().await;
    let files = {
        let mut pending = backlog.pending();
        pending.entries = 0;
        pending.bytes = 0;
        std::mem::take(&mut pending.files)
    };
    let fence = tree.fence(name);
    if tree.fleet.is_some() && fence.is_none() {
        // This node does not own the session (any more): it writes nothing for it.
        let dropped: usize = files.values().map(Vec::len).sum();
        if dropped > 0 {
            tracing::warn!(
                session = name,
                "not the session's owner: {dropped} transcript entries dropped"
            );
        }
        return Flushed::Stored;
    }
    let mut failed = BTreeMap::new();
    for ((session_id, file), entries) in files {
        if !failed.is_empty() {
            // The store is failing: keep the rest without asking again.
            failed.insert((session_id, file), entries);
            continue;
        }
        let appended = contained("append_entries", || {
            tree.store
                .append_entries(name, &session_id, &file, &entries, fence)
        })
        .await;
        match appended {
            Ok(_) => {}
            Err(e @ StoreError::StaleFence { .. }) => {
                // Taken over: a retry cannot succeed, and the session stops here.
                tracing::warn!(session = name, error = %e, "transcript append refused: the session was taken over");
                tree.report_store_error(name, &e);
                tree.emit(
                    Some(name),
                    SupervisorEventKind::StoreFailed {
                        error: format!("mirroring {} entries of `{file}`: {e}", entries.len()),
                    },
                );
                return Flushed::Stored;
            }
            Err(e) => {
                if report {
                    tracing::error!(session = name, %session_id, %file, error = %e, "could not store {} transcript entries: kept, retried until the store takes them", entries.len());
                    tree.emit(
                        Some(name),
                        SupervisorEventKind::StoreFailed {
                            error: format!(
                                "mirroring {} entries of `{file}` (kept and retried): {e}",
                                entries.len()
                            ),
                        },
                    );
                } else {
                    tracing::warn!(session = name, error = %e, "transcript append failed; retrying");
                }
                failed.insert((session_id, file), entries);
            }
        }
    }
    if failed.is_empty() {
        Flushed::Stored
    } else {
        backlog.pending().put_back(failed);
        Flushed::Kept
    }
}

/// The CLI's config dir and working directory for `options`: its env first, then (for a CLI on
/// this machine, `local`) ours.
fn config_and_cwd(options: &ClaudeOptions, local: bool) -> Option<(PathBuf, PathBuf)> {
    let env = |key: &str| {
        options
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
            .or_else(|| {
                (local && !options.env_remove.iter().any(|k| k == key))
                    .then(|| std::env::var_os(key))
                    .flatten()
                    .filter(|v| !v.is_empty())
            })
    };
    let config = match env("CLAUDE_CONFIG_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env("HOME")?).join(".claude"),
    };
    let cwd = match &options.cwd {
        Some(cwd) => cwd.clone(),
        None if local => std::env::current_dir().ok()?,
        None => return None,
    };
    let cwd = std::path::absolute(&cwd).unwrap_or(cwd);
    Some((config, cwd))
}

/// Before resuming `session_id`: when the CLI's side lacks the session file, writes the
/// conversation's files from the store into its project folder — on this machine, or through
/// the tree's launcher where it runs the CLI ([`Launcher::stage_file`]). A stored entry that
/// cannot be decoded is reported ([`SupervisorEventKind::TranscriptEntrySkipped`]) and skipped.
/// Returns how many files were written.
///
/// [`Launcher::stage_file`]: claude_session::Launcher::stage_file
pub(crate) async fn rehydrate(
    tree: &Tree,
    name: &str,
    options: &ClaudeOptions,
    session_id: &str,
) -> Result<usize, SupervisorError> {
    let launcher = tree.launcher.as_deref();
    let Some((config, cwd)) = config_and_cwd(options, launcher.is_none()) else {
        tracing::warn!(
            session = name,
            "the CLI's config dir (CLAUDE_CONFIG_DIR or HOME in the options' env, for a launcher) \
             or working directory is unknown: the conversation is not written back"
        );
        return Ok(0);
    };
    let dir = project_dir(&config, &cwd);
    let main = dir.join(format!("{session_id}.jsonl"));
    let staging = |source: claude_session::LaunchError| SupervisorError::Start {
        name: name.to_owned(),
        source: claude_session::SessionError::Launch {
            session: name.to_owned(),
            source,
        },
    };
    let present = match launcher {
        Some(l) => l.file_exists(&main).await.map_err(staging)?,
        None => main.exists(),
    };
    if present {
        return Ok(0);
    }
    let files = contained("load_entries", || tree.store.load_entries(name, session_id)).await?;
    let mut written = 0;
    for stored in files {
        if !is_safe_relative_file(&stored.file) || conversation_of(&stored.file) != session_id {
            tracing::warn!(session = name, file = %stored.file, "a stored transcript file with an unsafe name: skipped");
            continue;
        }
        let mut text = String::new();
        for (index, entry) in stored.entries.iter().enumerate() {
            match entry.parse() {
                Ok(value) => {
                    text.push_str(&value.to_string());
                    text.push('\n');
                }
                Err(error) => {
                    tracing::warn!(session = name, file = %stored.file, index, %error, "a corrupt transcript entry: skipped");
                    tree.emit(
                        Some(name),
                        SupervisorEventKind::TranscriptEntrySkipped {
                            session_id: session_id.to_owned(),
                            file: stored.file.clone(),
                            index,
                            error,
                        },
                    );
                }
            }
        }
        let path = dir.join(&stored.file);
        match launcher {
            Some(l) => l
                .stage_file(&path, text.as_bytes())
                .await
                .map_err(staging)?,
            None => write_file(&path, text.as_bytes())?,
        }
        written += 1;
    }
    if written > 0 {
        tracing::info!(session = name, %session_id, files = written, dir = %dir.display(), "wrote the conversation from the store for the resume");
    }
    Ok(written)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |action: &'static str| {
        move |source| StoreError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io("creating the folder of"))?;
    }
    // Mode 0600, as the CLI writes its own session files.
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io("creating"))?;
    f.write_all(bytes).map_err(io("writing"))?;
    f.sync_all().map_err(io("syncing"))
}
