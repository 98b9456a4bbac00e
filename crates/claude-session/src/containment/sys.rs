//! The raw system calls containment needs (Linux): pidfds, pipes, and the async-signal-safe
//! helpers the keeper runs between `fork` and `exec`.
//!
//! Every function here is a thin wrapper over one or two syscalls. Those marked *fork-safe* make
//! no allocation and take no lock, so the keeper may call them in a child of a multi-threaded
//! process (see `keeper.rs`).
// Syscall sites: libc offers no safe wrapper for pidfds, close_range or the post-fork helpers, and
// nix's wrappers may allocate (path conversion), which a post-fork child must not.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::libc;

/// A pidfd: a handle on one process that a reused pid can never alias (Linux ≥ 5.3).
#[derive(Debug)]
pub(crate) struct PidFd(OwnedFd);

impl PidFd {
    /// Opens a pidfd for `pid`. Call it only while `pid` is provably the process meant (an
    /// unreaped child of ours, or a child of one, checked after opening).
    pub(crate) fn open(pid: i32) -> io::Result<PidFd> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is
        // passed.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the syscall returned a fresh descriptor that nothing else owns.
        Ok(PidFd(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }))
    }

    /// Sends `signal` to exactly this process. `Ok(false)` when it has already exited.
    pub(crate) fn signal(&self, signal: i32) -> io::Result<bool> {
        // SAFETY: pidfd_send_signal with a null siginfo and no flags reads no memory of ours.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ESRCH) {
            Ok(false)
        } else {
            Err(e)
        }
    }

    /// A future that resolves once the process has exited: a second descriptor for it,
    /// registered with tokio's reactor (a pidfd turns readable at exit). Needs a runtime.
    pub(crate) fn exit_future(&self) -> io::Result<futures::future::BoxFuture<'static, ()>> {
        let fd = self.0.try_clone()?;
        // SAFETY: `fd` is a fresh, open descriptor owned by the `AsyncFd` for its whole life; its
        // raw fd never changes while owned.
        let fd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
        }
        .map_err(|e| e.into_parts().1)?;
        Ok(Box::pin(async move {
            let _ = fd.readable().await;
        }))
    }

    /// Whether the process has exited (a pidfd polls readable once it has).
    pub(crate) fn exited(&self) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd on our stack, zero timeout.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        n > 0 && pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
    }
}

/// A pipe, both ends close-on-exec: `(read, write)`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into our two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are fresh and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Reads what is in a pipe without blocking (up to `buf.len()` bytes); 0 when it is empty or
/// closed.
pub(crate) fn read_nonblocking(fd: &OwnedFd, buf: &mut [u8]) -> usize {
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl on our own descriptor; read into our own buffer of the given length.
    unsafe {
        let flags = libc::fcntl(raw, libc::F_GETFL);
        libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK);
        let n = libc::read(raw, buf.as_mut_ptr().cast(), buf.len());
        if n > 0 { n as usize } else { 0 }
    }
}

// ---- fork-safe helpers (used by the keeper between fork and exec) ----

/// The calling thread's `errno` as an `io::Error` (fork-safe: no allocation for OS errors).
pub(crate) fn last_error() -> io::Error {
    io::Error::last_os_error()
}

/// `write(2)` of all of `bytes`, retrying on `EINTR` (fork-safe).
pub(crate) fn write_all(fd: RawFd, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        // SAFETY: writes from our own slice.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return false;
        }
        bytes = bytes.get(n as usize..).unwrap_or_default();
    }
    true
}

/// `read(2)` into `buf`, retrying on `EINTR` (fork-safe); -1 on error.
pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> isize {
    loop {
        // SAFETY: reads into our own buffer of the given length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return n;
    }
}

/// `open(2)` (fork-safe: the path is already a C string); -1 on error.
pub(crate) fn open(path: &CStr, flags: i32) -> RawFd {
    // SAFETY: a valid NUL-terminated path.
    unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) }
}

/// `close(2)` (fork-safe).
pub(crate) fn close(fd: RawFd) {
    // SAFETY: closing a descriptor number; a stale number only yields EBADF.
    unsafe {
        libc::close(fd);
    }
}

/// Writes `value` into the file at `path` (open, write, close; fork-safe).
pub(crate) fn write_file(path: &CStr, value: &[u8]) -> bool {
    let fd = open(path, libc::O_WRONLY);
    if fd < 0 {
        return false;
    }
    let ok = write_all(fd, value);
    close(fd);
    ok
}

/// Closes every descriptor except those in `keep` (at most 8; fork-safe). Uses `close_range`
/// (Linux ≥ 5.9), else closes one by one up to the descriptor limit.
pub(crate) fn close_all_except(keep: &[RawFd]) {
    let mut sorted = [-1 as RawFd; 8];
    let mut n = 0;
    for &fd in keep.iter().take(8) {
        if fd >= 0 {
            sorted[n] = fd;
            n += 1;
        }
    }
    // Insertion sort: no allocation.
    for i in 1..n {
        let mut j = i;
        while j > 0 && sorted[j - 1] > sorted[j] {
            sorted.swap(j - 1, j);
            j -= 1;
        }
    }
    let mut from: u32 = 0;
    for &fd in &sorted[..n] {
        let fd = fd as u32;
        if fd > from {
            close_range(from, fd - 1);
        }
        from = fd.saturating_add(1);
    }
    close_range(from, u32::MAX);
}

fn close_range(first: u32, last: u32) {
    // SAFETY: close_range takes two numbers and flags.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    if r == 0 {
        return;
    }
    // No close_range: close one by one up to the soft descriptor limit.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into our struct.
    let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur.min(1 << 20) as u32
    } else {
        4096
    };
    let mut fd = first;
    while fd <= last && fd < max {
        close(fd as RawFd);
        fd += 1;
    }
}

/// Sleeps for `millis` milliseconds (fork-safe).
pub(crate) fn sleep_ms(millis: u64) {
    let ts = libc::timespec {
        tv_sec: (millis / 1000) as libc::time_t,
        tv_nsec: ((millis % 1000) * 1_000_000) as libc::c_long,
    };
    // SAFETY: nanosleep reads our timespec; the remainder is not wanted.
    unsafe {
        libc::nanosleep(&ts, std::ptr::null_mut());
    }
}

/// Monotonic milliseconds (fork-safe).
pub(crate) fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into our timespec.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// Parses decimal pids, one per whitespace-separated word, calling `each` for every one
/// (fork-safe). A number cut at the end of `buf` is returned as `(partial value, digits)` so that
/// a caller reading in chunks can carry it over.
pub(crate) fn parse_pids(buf: &[u8], carry: (i32, u32), mut each: impl FnMut(i32)) -> (i32, u32) {
    let (mut value, mut digits) = carry;
    for &b in buf {
        if b.is_ascii_digit() {
            value = value.saturating_mul(10).saturating_add(i32::from(b - b'0'));
            digits += 1;
        } else {
            if digits > 0 {
                each(value);
            }
            value = 0;
            digits = 0;
        }
    }
    (value, digits)
}

/// Calls `each` for every pid listed in the file at `path` (`cgroup.procs`, a `children` file),
/// reading it in chunks (fork-safe). Returns how many there were, or -1 if it cannot be read.
pub(crate) fn for_each_pid_in(path: &CStr, mut each: impl FnMut(i32)) -> i64 {
    let fd = open(path, libc::O_RDONLY);
    if fd < 0 {
        return -1;
    }
    let mut buf = [0u8; 1024];
    let mut carry = (0, 0);
    let mut count: i64 = 0;
    loop {
        let n = read(fd, &mut buf);
        if n <= 0 {
            break;
        }
        carry = parse_pids(&buf[..n as usize], carry, |pid| {
            count += 1;
            each(pid);
        });
    }
    if carry.1 > 0 {
        count += 1;
        each(carry.0);
    }
    close(fd);
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_parse_across_chunks() {
        let mut got = Vec::new();
        let carry = parse_pids(b"12 345\n67", (0, 0), |p| got.push(p));
        assert_eq!(got, [12, 345]);
        let carry = parse_pids(b"8\n9", carry, |p| got.push(p));
        assert_eq!(got, [12, 345, 678]);
        assert_eq!(carry, (9, 1));
    }

    #[test]
    fn a_pidfd_sees_its_own_process_only() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let fd = PidFd::open(child.id() as i32).unwrap();
        assert!(!fd.exited());
        assert!(fd.signal(libc::SIGKILL).unwrap());
        child.wait().unwrap();
        // Reaped: the pid may be anyone's now, but the pidfd still names the dead process.
        assert!(fd.exited());
        assert!(!fd.signal(libc::SIGKILL).unwrap());
    }
}
