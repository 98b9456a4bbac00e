//! Cgroups for a launch (host side): finding the hierarchies this process may write to, creating
//! one directory per launch under this process's own cgroup, reading usage, setting a memory
//! limit, killing, removing.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Which hierarchy a cgroup directory belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hierarchy {
    /// The unified (v2) hierarchy.
    V2,
    /// The v1 `memory` controller.
    V1Memory,
    /// The v1 `freezer` controller.
    V1Freezer,
}

/// Where this process may create cgroups, per hierarchy (probed once).
#[derive(Debug, Default)]
pub(crate) struct Probe {
    /// The v2 parent directory, if writable; with whether children get `cgroup.kill`.
    pub(crate) v2: Option<V2Parent>,
    /// The v1 memory parent directory, if writable.
    pub(crate) v1_memory: Option<PathBuf>,
    /// The v1 freezer parent directory, if writable.
    pub(crate) v1_freezer: Option<PathBuf>,
    /// Why a hierarchy is not usable, for error messages.
    pub(crate) notes: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct V2Parent {
    pub(crate) dir: PathBuf,
    pub(crate) kill: bool,
}

/// The probe, run on first use.
pub(crate) fn probe() -> &'static Probe {
    static PROBE: OnceLock<Probe> = OnceLock::new();
    PROBE.get_or_init(run_probe)
}

struct Mount {
    root: String,
    point: PathBuf,
    fstype: String,
    options: String,
}

fn mounts() -> Vec<Mount> {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            // id parent major:minor root mount-point options [optional…] - fstype source super
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let fstype = right.next()?.to_owned();
            let _source = right.next();
            let options = right.next().unwrap_or_default().to_owned();
            Some(Mount {
                root: unescape(left.get(3)?),
                point: PathBuf::from(unescape(left.get(4)?)),
                fstype,
                options,
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if let Some(oct) = s
                .get(i + 1..i + 4)
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(oct);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// This process's cgroup paths: `(controllers, path)` per line of `/proc/self/cgroup`.
fn own_cgroups() -> Vec<(String, String)> {
    let Ok(text) = fs::read_to_string("/proc/self/cgroup") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?.to_owned();
            let path = parts.next()?.to_owned();
            Some((controllers, path))
        })
        .collect()
}

/// The directory of our own cgroup inside `mount`.
fn own_dir(mount: &Mount, own_path: &str) -> PathBuf {
    let relative = own_path
        .strip_prefix(mount.root.trim_end_matches('/'))
        .unwrap_or(own_path);
    mount.point.join(relative.trim_start_matches('/'))
}

fn writable(dir: &Path) -> Result<(), String> {
    let probe = dir.join(format!("claude-probe-{}", std::process::id()));
    match fs::create_dir(&probe) {
        Ok(()) => {
            let _ = fs::remove_dir(&probe);
            Ok(())
        }
        Err(e) => Err(format!(
            "cannot create a cgroup under {}: {e}",
            dir.display()
        )),
    }
}

fn run_probe() -> Probe {
    let mut probe = Probe::default();
    let mounts = mounts();
    let own = own_cgroups();
    // v2: the `0::/path` line and a cgroup2 mount.
    match (
        mounts.iter().find(|m| m.fstype == "cgroup2"),
        own.iter().find(|(c, _)| c.is_empty()),
    ) {
        (Some(mount), Some((_, path))) => {
            let dir = own_dir(mount, path);
            match fs::create_dir(dir.join(format!("claude-probe-{}", std::process::id()))) {
                Ok(()) => {
                    let child = dir.join(format!("claude-probe-{}", std::process::id()));
                    let kill = child.join("cgroup.kill").exists();
                    let _ = fs::remove_dir(&child);
                    probe.v2 = Some(V2Parent { dir, kill });
                }
                Err(e) => probe.notes.push(format!(
                    "cgroup v2: cannot create a cgroup under {}: {e}",
                    dir.display()
                )),
            }
        }
        _ => probe
            .notes
            .push("cgroup v2: no unified hierarchy mounted".to_owned()),
    }
    for (controller, slot) in [
        ("memory", &mut probe.v1_memory),
        ("freezer", &mut probe.v1_freezer),
    ] {
        let mount = mounts
            .iter()
            .find(|m| m.fstype == "cgroup" && m.options.split(',').any(|o| o == controller));
        let path = own
            .iter()
            .find(|(c, _)| c.split(',').any(|c| c == controller));
        match (mount, path) {
            (Some(mount), Some((_, path))) => {
                let dir = own_dir(mount, path);
                match writable(&dir) {
                    Ok(()) => *slot = Some(dir),
                    Err(e) => probe.notes.push(format!("cgroup v1 {controller}: {e}")),
                }
            }
            _ => probe
                .notes
                .push(format!("cgroup v1 {controller}: not mounted")),
        }
    }
    probe
}

/// One cgroup directory created for one launch.
#[derive(Debug)]
pub(crate) struct CgroupDir {
    pub(crate) hierarchy: Hierarchy,
    pub(crate) path: PathBuf,
}

impl CgroupDir {
    /// Creates `<parent>/<name>`.
    pub(crate) fn create(hierarchy: Hierarchy, parent: &Path, name: &str) -> io::Result<CgroupDir> {
        let path = parent.join(name);
        fs::create_dir(&path)?;
        Ok(CgroupDir { hierarchy, path })
    }

    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub(crate) fn c_file(&self, name: &str) -> io::Result<CString> {
        CString::new(self.file(name).as_os_str().as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    }

    pub(crate) fn c_path(&self) -> io::Result<CString> {
        CString::new(self.path.as_os_str().as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    }

    /// The pids in it (`cgroup.procs`); `None` when it cannot be read (removed).
    pub(crate) fn procs(&self) -> Option<Vec<i32>> {
        let text = fs::read_to_string(self.file("cgroup.procs")).ok()?;
        Some(
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect(),
        )
    }

    /// Memory charged to it (v2 `memory.current`, v1 `memory.usage_in_bytes`).
    pub(crate) fn memory_bytes(&self) -> Option<u64> {
        let file = match self.hierarchy {
            Hierarchy::V2 => "memory.current",
            Hierarchy::V1Memory => "memory.usage_in_bytes",
            Hierarchy::V1Freezer => return None,
        };
        fs::read_to_string(self.file(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub(crate) fn has_memory(&self) -> bool {
        match self.hierarchy {
            Hierarchy::V2 => self.file("memory.max").exists(),
            Hierarchy::V1Memory => true,
            Hierarchy::V1Freezer => false,
        }
    }

    /// How many processes the kernel's OOM killer has killed in it.
    pub(crate) fn oom_kills(&self) -> Option<u64> {
        let (file, key) = match self.hierarchy {
            Hierarchy::V2 => ("memory.events", "oom_kill"),
            Hierarchy::V1Memory => ("memory.oom_control", "oom_kill"),
            Hierarchy::V1Freezer => return None,
        };
        let text = fs::read_to_string(self.file(file)).ok()?;
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok()).flatten()
        })
    }

    /// Sets a hard memory limit (and no swap beyond it, where the kernel accounts swap).
    pub(crate) fn set_memory_limit(&self, bytes: u64) -> io::Result<()> {
        match self.hierarchy {
            Hierarchy::V2 => {
                fs::write(self.file("memory.max"), bytes.to_string())?;
                let swap = self.file("memory.swap.max");
                if swap.exists() {
                    fs::write(swap, "0")?;
                }
                Ok(())
            }
            Hierarchy::V1Memory => {
                fs::write(self.file("memory.limit_in_bytes"), bytes.to_string())?;
                let memsw = self.file("memory.memsw.limit_in_bytes");
                if memsw.exists() {
                    // memsw counts memory + swap: equal to the limit means no swap on top.
                    let _ = fs::write(memsw, bytes.to_string());
                }
                Ok(())
            }
            Hierarchy::V1Freezer => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the freezer controller has no memory limit",
            )),
        }
    }

    /// v2: kills every process in it at once (`cgroup.kill`).
    pub(crate) fn kill(&self) -> io::Result<()> {
        fs::write(self.file("cgroup.kill"), "1")
    }

    /// v1 freezer: freeze, SIGKILL every member (frozen: none can exit and free its pid
    /// meanwhile), thaw.
    pub(crate) fn freeze_and_kill(&self) -> io::Result<()> {
        fs::write(self.file("freezer.state"), "FROZEN")?;
        let until = std::time::Instant::now() + std::time::Duration::from_secs(1);
        let mut frozen = false;
        while std::time::Instant::now() < until {
            if fs::read_to_string(self.file("freezer.state"))?.starts_with("FROZEN") {
                frozen = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        if frozen {
            for pid in self.procs().unwrap_or_default() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        fs::write(self.file("freezer.state"), "THAWED")
    }

    /// Removes the directory (it must be empty).
    pub(crate) fn remove(&self) -> io::Result<()> {
        match fs::remove_dir(&self.path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

/// A cgroup directory name for a launch: `claude-<session>-<launch id>`, with anything but
/// `[A-Za-z0-9_.-]` replaced.
pub(crate) fn dir_name(session: &str, launch_id: &str) -> String {
    let clean: String = session
        .chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("claude-{clean}-{launch_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_path_components() {
        assert_eq!(dir_name("a/b c", "x1"), "claude-a_b_c-x1");
        assert_eq!(unescape(r"/a\040b"), "/a b");
    }
}
