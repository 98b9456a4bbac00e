//! A snapshot of the places on the host a misconfigured CLI would write to, to prove a test
//! wrote nothing outside its sandbox.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What is known about one path.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp {
    is_dir: bool,
    len: u64,
    modified: Option<SystemTime>,
}

/// The state of `/tmp/claude-<uid>`, `/tmp/cc-socks`, the real `$HOME/.claude` (recursively)
/// and `$HOME/.claude.json`, taken before a test and compared after it.
#[derive(Clone, Debug)]
pub struct HostSnapshot {
    roots: Vec<PathBuf>,
    entries: BTreeMap<PathBuf, Stamp>,
}

/// At most this many entries are recorded per root (a huge real `~/.claude` stays cheap).
const MAX_ENTRIES: usize = 20_000;

impl HostSnapshot {
    /// The watched paths: `/tmp/claude-<euid>`, `/tmp/cc-socks`, `$HOME/.claude`,
    /// `$HOME/.claude.json` (with this process's `HOME`, the real one).
    pub fn watched_paths() -> Vec<PathBuf> {
        let uid = nix::unistd::geteuid().as_raw();
        let mut roots = vec![
            PathBuf::from(format!("/tmp/claude-{uid}")),
            PathBuf::from("/tmp/cc-socks"),
        ];
        if let Some(home) = std::env::var_os("HOME") {
            let home = PathBuf::from(home);
            roots.push(home.join(".claude"));
            roots.push(home.join(".claude.json"));
        }
        roots
    }

    /// Records the watched paths now.
    pub fn take() -> HostSnapshot {
        HostSnapshot::of(HostSnapshot::watched_paths())
    }

    /// Records the given paths (each recursively) now.
    pub fn of(roots: Vec<PathBuf>) -> HostSnapshot {
        let mut entries = BTreeMap::new();
        for root in &roots {
            record(root, &mut entries, MAX_ENTRIES);
        }
        HostSnapshot { roots, entries }
    }

    /// What changed since this snapshot: one line per path created, removed or modified.
    pub fn changes(&self) -> Vec<String> {
        let now = HostSnapshot::of(self.roots.clone());
        let mut out = Vec::new();
        for (path, before) in &self.entries {
            match now.entries.get(path) {
                None => out.push(format!("removed: {}", path.display())),
                Some(after) if after != before => {
                    out.push(format!("modified: {}", path.display()));
                }
                Some(_) => {}
            }
        }
        for path in now.entries.keys() {
            if !self.entries.contains_key(path) {
                out.push(format!("created: {}", path.display()));
            }
        }
        out
    }

    /// Panics, listing each path, if anything watched changed since this snapshot.
    #[track_caller]
    pub fn assert_unchanged(&self) {
        let changes = self.changes();
        if !changes.is_empty() {
            panic!(
                "files appeared or changed outside the test's sandbox:\n  {}",
                changes.join("\n  ")
            );
        }
    }
}

/// Everything to check after a real-CLI test: the watched host paths are unchanged
/// ([`HostSnapshot`]) and the watched process groups are empty (no survivor, no zombie).
///
/// ```no_run
/// # async fn demo(pgid: i32) {
/// use claude_testing::real_cli::LeakCheck;
/// let mut check = LeakCheck::start();
/// // … spawn a CLI, then:
/// check.watch_group(pgid);
/// // … shut it down, then:
/// check.assert_clean();
/// # }
/// ```
#[derive(Debug)]
pub struct LeakCheck {
    snapshot: HostSnapshot,
    groups: Vec<i32>,
}

impl LeakCheck {
    /// Takes the host snapshot now (call it before the first spawn).
    pub fn start() -> LeakCheck {
        LeakCheck {
            snapshot: HostSnapshot::take(),
            groups: Vec::new(),
        }
    }

    /// Adds a process group that must be empty at the end (a CLI's pgid).
    pub fn watch_group(&mut self, pgid: i32) {
        if !self.groups.contains(&pgid) {
            self.groups.push(pgid);
        }
    }

    /// Waits (at most 5 s per group) for the watched groups to empty, then panics naming every
    /// survivor (pid, state, cmdline) and every changed host path.
    #[track_caller]
    pub fn assert_clean(&self) {
        let mut problems = Vec::new();
        for pgid in &self.groups {
            if let Err(left) =
                crate::procs::wait_group_empty(*pgid, std::time::Duration::from_secs(5))
            {
                let mut msg = format!("process group {pgid} is not empty:");
                for p in left {
                    msg.push_str(&format!("\n    {p}"));
                }
                problems.push(msg);
            }
        }
        let changes = self.snapshot.changes();
        if !changes.is_empty() {
            problems.push(format!(
                "files appeared or changed outside the test's sandbox:\n    {}",
                changes.join("\n    ")
            ));
        }
        if !problems.is_empty() {
            panic!("leak check failed:\n  {}", problems.join("\n  "));
        }
    }
}

fn record(path: &Path, entries: &mut BTreeMap<PathBuf, Stamp>, budget: usize) {
    if entries.len() >= budget {
        return;
    }
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    entries.insert(
        path.to_owned(),
        Stamp {
            is_dir: meta.is_dir(),
            len: if meta.is_dir() { 0 } else { meta.len() },
            modified: meta.modified().ok(),
        },
    );
    if meta.is_dir() {
        if let Ok(dir) = std::fs::read_dir(path) {
            for entry in dir.filter_map(Result::ok) {
                record(&entry.path(), entries, budget);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_sees_created_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let watched = dir.path().join("watched");
        let snap = HostSnapshot::of(vec![watched.clone()]);
        assert!(snap.changes().is_empty());
        std::fs::create_dir(&watched).expect("mkdir");
        std::fs::write(watched.join("f"), "x").expect("write");
        let changes = snap.changes();
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert!(changes.iter().all(|c| c.starts_with("created: ")));
    }
}
