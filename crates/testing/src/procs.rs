//! Process-table checks (Linux, from `/proc`): who is in a process group, who descends from a
//! pid, who carries a session's [`Marker`] (an environment variable or a cgroup), and assertions
//! that nothing survived and no `<defunct>` entry was left behind.
//!
//! Use them after every test that starts processes:
//!
//! ```no_run
//! # let pgid = 0;
//! use claude_testing::procs;
//! procs::wait_group_empty(pgid, std::time::Duration::from_secs(5)).ok();
//! procs::assert_no_survivors(pgid);
//! procs::assert_no_zombie_children();
//! ```
//!
//! A process that vanishes while being read is skipped: every listing is a snapshot.

use std::fmt;
use std::time::{Duration, Instant};

/// One process, as read from `/proc/<pid>/stat` and `/proc/<pid>/cmdline`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcInfo {
    /// Process id.
    pub pid: i32,
    /// Parent process id.
    pub ppid: i32,
    /// Process group id.
    pub pgid: i32,
    /// Session id.
    pub sid: i32,
    /// State letter: `R` running, `S` sleeping, `D` disk sleep, `Z` zombie, `T` stopped, …
    pub state: char,
    /// The command name (`comm`, at most 15 bytes).
    pub comm: String,
    /// The command line, arguments joined with spaces (empty for zombies and kernel threads).
    pub cmdline: String,
}

impl ProcInfo {
    /// Whether this is a zombie (`<defunct>`): exited but not reaped by its parent.
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z'
    }
}

impl fmt::Display for ProcInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            'Z' => "Z (zombie)",
            'R' => "R (running)",
            'S' => "S (sleeping)",
            'D' => "D (disk sleep)",
            'T' => "T (stopped)",
            't' => "t (tracing stop)",
            'X' => "X (dead)",
            _ => "?",
        };
        let cmd = if self.cmdline.is_empty() {
            format!("[{}]", self.comm)
        } else {
            self.cmdline.clone()
        };
        write!(
            f,
            "pid {} (ppid {}, pgid {}) state {}: {}",
            self.pid, self.ppid, self.pgid, state, cmd
        )
    }
}

/// Parses the content of `/proc/<pid>/stat`.
fn parse_stat(stat: &str) -> Option<(i32, String, char, i32, i32, i32)> {
    // "pid (comm) state ppid pgrp session …"; comm may hold spaces and parentheses.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let pid = stat[..open].trim().parse().ok()?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgid = rest.next()?.parse().ok()?;
    let sid = rest.next()?.parse().ok()?;
    Some((pid, comm, state, ppid, pgid, sid))
}

/// Reads one process; `None` if it does not exist (any more).
pub fn info(pid: i32) -> Option<ProcInfo> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (pid, comm, state, ppid, pgid, sid) = parse_stat(&stat)?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|b| *b == 0)
                .filter(|part| !part.is_empty())
                .map(|part| String::from_utf8_lossy(part).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    Some(ProcInfo {
        pid,
        ppid,
        pgid,
        sid,
        state,
        comm,
        cmdline,
    })
}

/// Every process visible in `/proc`, by ascending pid.
pub fn list() -> Vec<ProcInfo> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut all: Vec<ProcInfo> = dir
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(info)
        .collect();
    all.sort_by_key(|p| p.pid);
    all
}

/// The processes of process group `pgid` (zombies included).
pub fn in_group(pgid: i32) -> Vec<ProcInfo> {
    list().into_iter().filter(|p| p.pgid == pgid).collect()
}

/// The direct children of `pid`.
pub fn children(pid: i32) -> Vec<ProcInfo> {
    list().into_iter().filter(|p| p.ppid == pid).collect()
}

/// Every descendant of `pid` (children, their children, …), not `pid` itself.
pub fn descendants(pid: i32) -> Vec<ProcInfo> {
    let all = list();
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for p in all.iter().filter(|p| p.ppid == parent) {
            if !out.iter().any(|o: &ProcInfo| o.pid == p.pid) {
                frontier.push(p.pid);
                out.push(p.clone());
            }
        }
    }
    out.sort_by_key(|p| p.pid);
    out
}

/// This process's children that are zombies (exited, not reaped: our own reaping bug).
pub fn zombie_children() -> Vec<ProcInfo> {
    children(std::process::id() as i32)
        .into_iter()
        .filter(ProcInfo::is_zombie)
        .collect()
}

/// Every zombie among this process's descendants.
pub fn zombie_descendants() -> Vec<ProcInfo> {
    descendants(std::process::id() as i32)
        .into_iter()
        .filter(ProcInfo::is_zombie)
        .collect()
}

fn describe(title: &str, procs: &[ProcInfo]) -> String {
    let mut msg = format!("{title} ({}):", procs.len());
    for p in procs {
        msg.push_str("\n  ");
        msg.push_str(&p.to_string());
    }
    msg
}

/// `Err` naming every process still in group `pgid` (zombies included).
pub fn check_no_survivors(pgid: i32) -> Result<(), String> {
    let left = in_group(pgid);
    if left.is_empty() {
        Ok(())
    } else {
        Err(describe(
            &format!("processes survived in process group {pgid}"),
            &left,
        ))
    }
}

/// Panics, naming each process (pid, state, cmdline), if group `pgid` is not empty.
#[track_caller]
pub fn assert_no_survivors(pgid: i32) {
    if let Err(msg) = check_no_survivors(pgid) {
        panic!("{msg}");
    }
}

/// `Err` naming every one of `pids` that still exists (zombies included).
pub fn check_pids_gone(pids: &[i32]) -> Result<(), String> {
    let left: Vec<ProcInfo> = pids.iter().filter_map(|pid| info(*pid)).collect();
    if left.is_empty() {
        Ok(())
    } else {
        Err(describe("processes still exist", &left))
    }
}

/// Panics, naming each process (pid, state, cmdline), if any of `pids` still exists.
#[track_caller]
pub fn assert_pids_gone(pids: &[i32]) {
    if let Err(msg) = check_pids_gone(pids) {
        panic!("{msg}");
    }
}

/// `Err` naming every zombie among this process's descendants.
pub fn check_no_zombies() -> Result<(), String> {
    let zombies = zombie_descendants();
    if zombies.is_empty() {
        Ok(())
    } else {
        Err(describe(
            "zombie (<defunct>) processes under this test process",
            &zombies,
        ))
    }
}

/// Panics, naming each one, if any descendant of this process is a zombie.
#[track_caller]
pub fn assert_no_zombies() {
    if let Err(msg) = check_no_zombies() {
        panic!("{msg}");
    }
}

/// Same as [`assert_no_zombies`] but only for direct children (the ones we must reap).
#[track_caller]
pub fn assert_no_zombie_children() {
    let zombies = zombie_children();
    if !zombies.is_empty() {
        panic!(
            "{}",
            describe("zombie (<defunct>) children of this test process", &zombies)
        );
    }
}

/// The environment of `pid` (`/proc/<pid>/environ`); `None` when it cannot be read (gone, a
/// zombie, not permitted).
pub fn environ(pid: i32) -> Option<Vec<(String, String)>> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|e| !e.is_empty())
            .filter_map(|e| {
                let e = String::from_utf8_lossy(e);
                e.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned()))
            })
            .collect(),
    )
}

/// The value of `name` in the environment of `pid`.
pub fn env_var(pid: i32, name: &str) -> Option<String> {
    environ(pid)?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The cgroup paths of `pid` (`/proc/<pid>/cgroup`, one per hierarchy).
pub fn cgroups(pid: i32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map(|t| {
            t.lines()
                .filter_map(|l| l.splitn(3, ':').nth(2).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// What marks the processes of one session (or one launch): an environment variable every
/// process of it inherits, and a fragment of the name of the cgroups created for it. A process
/// belongs if its environment has the variable with the value, *or* one of its cgroup paths
/// contains the fragment (which also finds a tool that cleared its environment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    /// The variable (e.g. `CLAUDE_SUPERVISOR_SESSION`).
    pub var: String,
    /// Its value (e.g. the session's name).
    pub value: String,
    /// A fragment of the cgroup directory names (e.g. `claude-<session>-`), if any.
    pub cgroup_fragment: Option<String>,
}

impl Marker {
    /// Processes whose environment has `var=value`.
    pub fn env(var: impl Into<String>, value: impl Into<String>) -> Marker {
        Marker {
            var: var.into(),
            value: value.into(),
            cgroup_fragment: None,
        }
    }

    /// Also processes in a cgroup whose path contains `fragment`.
    #[must_use]
    pub fn or_cgroup(mut self, fragment: impl Into<String>) -> Marker {
        self.cgroup_fragment = Some(fragment.into());
        self
    }

    /// Whether `pid` carries the marker.
    pub fn matches(&self, pid: i32) -> bool {
        if env_var(pid, &self.var).is_some_and(|v| v == self.value) {
            return true;
        }
        self.cgroup_fragment
            .as_ref()
            .is_some_and(|f| cgroups(pid).iter().any(|c| c.contains(f.as_str())))
    }
}

/// Every process (zombies included) that carries `marker`, except this process.
pub fn marked(marker: &Marker) -> Vec<ProcInfo> {
    let me = std::process::id() as i32;
    list()
        .into_iter()
        .filter(|p| p.pid != me && marker.matches(p.pid))
        .collect()
}

/// `Err` naming every process that still carries `marker`.
pub fn check_none_marked(marker: &Marker) -> Result<(), String> {
    let left = marked(marker);
    if left.is_empty() {
        Ok(())
    } else {
        Err(describe(
            &format!("processes of {}={} still alive", marker.var, marker.value),
            &left,
        ))
    }
}

/// Polls (async) until no process carries `marker`, for at most `timeout`. `Err` holds the ones
/// still there at the deadline.
///
/// # Cancel safety
/// Cancel safe: it only reads `/proc`.
pub async fn wait_none_marked(marker: &Marker, timeout: Duration) -> Result<(), Vec<ProcInfo>> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = marked(marker);
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(left);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls (async) until at least `n` live processes carry `marker` and satisfy `pred`, for at
/// most `timeout`; returns them.
///
/// # Cancel safety
/// Cancel safe: it only reads `/proc`.
pub async fn wait_marked(
    marker: &Marker,
    n: usize,
    timeout: Duration,
    pred: impl Fn(&ProcInfo) -> bool,
) -> Result<Vec<ProcInfo>, Vec<ProcInfo>> {
    let deadline = Instant::now() + timeout;
    loop {
        let found: Vec<ProcInfo> = marked(marker)
            .into_iter()
            .filter(|p| !p.is_zombie() && pred(p))
            .collect();
        if found.len() >= n {
            return Ok(found);
        }
        if Instant::now() >= deadline {
            return Err(found);
        }
        tokio::time::sleep(POLL).await;
    }
}

const POLL: Duration = Duration::from_millis(20);

/// Polls until group `pgid` is empty, for at most `timeout` (blocking this thread).
/// `Err` holds the processes still there at the deadline.
pub fn wait_group_empty(pgid: i32, timeout: Duration) -> Result<(), Vec<ProcInfo>> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = in_group(pgid);
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(left);
        }
        std::thread::sleep(POLL);
    }
}

/// Async [`wait_group_empty`]: polls with `tokio::time::sleep`.
///
/// # Cancel safety
/// Cancel safe: it only reads `/proc`.
pub async fn wait_group_empty_async(pgid: i32, timeout: Duration) -> Result<(), Vec<ProcInfo>> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = in_group(pgid);
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(left);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls until none of `pids` exists, for at most `timeout` (blocking this thread).
/// `Err` holds the ones still there at the deadline.
pub fn wait_pids_gone(pids: &[i32], timeout: Duration) -> Result<(), Vec<ProcInfo>> {
    let deadline = Instant::now() + timeout;
    loop {
        let left: Vec<ProcInfo> = pids.iter().filter_map(|pid| info(*pid)).collect();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(left);
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_stat_handles_parens_in_comm() {
        let stat = "1234 (we(ird) na)me) S 1 1234 1234 0 -1 4194560 0 0";
        let (pid, comm, state, ppid, pgid, sid) = parse_stat(stat).expect("parses");
        assert_eq!(
            (pid, comm.as_str(), state, ppid, pgid, sid),
            (1234, "we(ird) na)me", 'S', 1, 1234, 1234)
        );
    }

    #[test]
    fn info_reads_self() {
        let me = info(std::process::id() as i32).expect("own /proc entry");
        assert_eq!(me.pid, std::process::id() as i32);
        assert!(!me.cmdline.is_empty());
        assert!(!me.is_zombie());
    }
}
