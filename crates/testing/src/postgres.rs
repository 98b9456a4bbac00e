//! A real PostgreSQL server for one test: `initdb` into a temporary directory, the server on a
//! unix socket in that directory only (no TCP), stopped and removed when dropped.
//!
//! Uses Debian's server binaries (`/usr/lib/postgresql/<version>/bin`, the highest version) or
//! `initdb`/`postgres` on `PATH`. PostgreSQL refuses to run as root: as root, the server runs as
//! `nobody`, and the directory is handed to it. Without the binaries, [`TempPostgres::start`]
//! skips loudly, or panics when `CLAUDE_REQUIRE_REAL_CLI=1` (CI, where `.ci/run` installs them).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The uid/gid the server runs as when the test runs as root (`nobody`).
const NOBODY: u32 = 65534;
/// How long the server may take to be ready.
const READY_LIMIT: Duration = Duration::from_secs(60);

/// A running PostgreSQL server in a temporary directory.
#[derive(Debug)]
pub struct TempPostgres {
    dir: tempfile::TempDir,
    server: Option<Child>,
    port: u16,
}

/// The directory of the server binaries (`initdb`, `postgres`), if installed.
pub fn server_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|d| d.join("initdb").is_file() && d.join("postgres").is_file())
    })
}

impl TempPostgres {
    /// Starts a server, or `None` after a LOUD message when the binaries are missing.
    ///
    /// # Panics
    ///
    /// When the binaries are missing and `CLAUDE_REQUIRE_REAL_CLI=1`, or when `initdb` or the
    /// server fails.
    pub fn start() -> Option<TempPostgres> {
        let Some(bin) = server_bin_dir() else {
            let msg = "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb, \
                       no initdb on PATH): install Debian's `postgresql` package";
            if std::env::var("CLAUDE_REQUIRE_REAL_CLI").as_deref() == Ok("1") {
                panic!("{msg} (required: CLAUDE_REQUIRE_REAL_CLI=1)");
            }
            eprintln!("\n!!! SKIPPED: {msg}\n");
            return None;
        };
        Some(Self::start_with(&bin))
    }

    fn start_with(bin: &Path) -> TempPostgres {
        let dir = tempfile::Builder::new()
            .prefix("claude-pg-")
            .tempdir()
            .expect("a temporary directory");
        let root = nix::unistd::geteuid().is_root();
        if root {
            std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOBODY))
                .expect("hand the directory to nobody");
        }
        let command = |program: &str| {
            let mut cmd = Command::new(bin.join(program));
            cmd.current_dir(dir.path()).env_remove("PGDATA");
            if root {
                // std drops the supplementary groups too when root sets a uid.
                cmd.uid(NOBODY).gid(NOBODY);
            }
            cmd
        };
        let data = dir.path().join("data");
        let out = command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .stdin(Stdio::null())
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let port = 5432;
        let log = std::fs::File::create(dir.path().join("server.log")).expect("server log");
        if root {
            std::os::unix::fs::chown(dir.path().join("server.log"), Some(NOBODY), Some(NOBODY))
                .expect("chown the log");
        }
        let server = command("postgres")
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir.path())
            .args(["-c", "listen_addresses=", "-c", "fsync=off", "-p"])
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start postgres");
        let mut pg = TempPostgres {
            dir,
            server: Some(server),
            port,
        };
        pg.wait_ready();
        pg
    }

    fn wait_ready(&mut self) {
        let pid_file = self.dir.path().join("data/postmaster.pid");
        let deadline = Instant::now() + READY_LIMIT;
        loop {
            // The last line of postmaster.pid says `ready` once connections are accepted.
            let ready = std::fs::read_to_string(&pid_file)
                .is_ok_and(|t| t.lines().any(|l| l.trim() == "ready"));
            if ready
                && self
                    .socket_dir()
                    .join(format!(".s.PGSQL.{}", self.port))
                    .exists()
            {
                return;
            }
            if let Some(status) = self
                .server
                .as_mut()
                .and_then(|s| s.try_wait().ok().flatten())
            {
                panic!("postgres exited early ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "postgres not ready in time: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The directory of the server's unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A connection URL to database `postgres` as user `postgres`, over the socket.
    pub fn url(&self) -> String {
        format!(
            "postgresql://postgres@localhost:{}/postgres?host={}",
            self.port,
            self.socket_dir().display()
        )
    }

    /// Creates database `name` (with the server's own `createdb`), returns its URL.
    ///
    /// # Panics
    ///
    /// When the database cannot be created.
    pub fn create_database(&self, name: &str) -> String {
        let bin = server_bin_dir().expect("the server binaries");
        let createdb = bin.join("createdb");
        let out = Command::new(createdb)
            .args(["-h"])
            .arg(self.socket_dir())
            .args(["-p", &self.port.to_string(), "-U", "postgres", name])
            .output()
            .expect("run createdb");
        assert!(
            out.status.success(),
            "createdb {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!(
            "postgresql://postgres@localhost:{}/{name}?host={}",
            self.port,
            self.socket_dir().display()
        )
    }

    /// Stops the server (fast shutdown) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let pid = nix::unistd::Pid::from_raw(server.id() as i32);
            // SIGINT: PostgreSQL's fast shutdown (sessions are ended, then it exits).
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                match server.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = server.kill();
                        let _ = server.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}
