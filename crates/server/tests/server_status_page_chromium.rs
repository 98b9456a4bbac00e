//! The status page (`GET /`) rendered by a real headless Chromium (Debian's `chromium`): a
//! server on fake-claude with a running session, one that has done turns and one that failed;
//! the DOM Chromium built from the page holds each session's row (name, state, turns), a
//! reload shows fresh figures, text from the config is text (escaped, never markup; the rows'
//! escaping is also page.rs's unit test), and a screenshot is kept under `target/artifacts/`
//! for CI.
//!
//! Without `/usr/bin/chromium` the test skips loudly, or fails under
//! `CLAUDE_REQUIRE_REAL_CLI=1` (CI, where `scripts/test.sh` installs it).

#[path = "support/common.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::{Fault, Scenario};
use serde_json::Value;
use support::{agent, base, done_text, fake_config, query_sse, start};

const CHROMIUM: &str = "/usr/bin/chromium";
/// A page load (or screenshot) takes a second or two; past this Chromium is taken as hung.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(60);
/// The tree's name (any text a config gives; the page's title and heading): markup that must
/// stay text.
const TREE_NAME: &str = "ops <i id=\"injected\">&</i> co";
/// What the failing session writes on stderr before it crashes: markup too, should it ever be
/// shown.
const CRASH_STDERR: &str = "<b id=\"injected\">boom</b> & 'bye'";

/// Chromium, or `None` after a LOUD skip message (a panic under `CLAUDE_REQUIRE_REAL_CLI=1`).
fn chromium_or_skip() -> Option<PathBuf> {
    let path = PathBuf::from(CHROMIUM);
    if path.is_file() {
        return Some(path);
    }
    let msg = format!(
        "{CHROMIUM} not found: install Debian's `chromium` (scripts/test.sh does, as root)"
    );
    if std::env::var("CLAUDE_REQUIRE_REAL_CLI").as_deref() == Ok("1") {
        panic!("{msg} (required: CLAUDE_REQUIRE_REAL_CLI=1)");
    }
    eprintln!(
        "\n==================================================================\n\
         SKIPPED: {msg}\n\
         ==================================================================\n"
    );
    None
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when absolute, else the folder above this
/// test binary's that cargo marked with `CACHEDIR.TAG`.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from)
        && dir.is_absolute()
    {
        return dir;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors()
        .find(|d| d.join("CACHEDIR.TAG").is_file())
        .map(Path::to_owned)
        .unwrap_or_else(|| {
            // <target>/<profile>/deps/<binary>
            exe.ancestors()
                .nth(3)
                .expect("the test binary sits in <target>/<profile>/deps")
                .to_owned()
        })
}

/// Runs Chromium headless on `url` with `args` (its own profile dir, its own process group),
/// and returns its stdout. A Chromium still running after [`CHROMIUM_TIMEOUT`] is killed (its
/// group, by the pid we started) and the test fails.
async fn chromium(bin: &Path, url: &str, args: &[&str]) -> String {
    let profile = tempfile::Builder::new()
        .prefix("chromium-profile-")
        .tempdir()
        .expect("a profile dir");
    let mut command = tokio::process::Command::new(bin);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: Chromium forks zygote and renderer processes, which a kill of the
        // browser alone would leave behind.
        .process_group(0)
        .kill_on_drop(true);
    let child = command.spawn().expect("chromium starts");
    let pid = child.id().expect("chromium's pid") as i32;
    match tokio::time::timeout(CHROMIUM_TIMEOUT, child.wait_with_output()).await {
        Ok(output) => {
            let output = output.expect("chromium's output");
            assert!(
                output.status.success(),
                "chromium {args:?} {url} exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).expect("chromium writes UTF-8")
        }
        Err(_) => {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!(
                "chromium {args:?} {url} did not finish within {CHROMIUM_TIMEOUT:?}: killed its group {pid}"
            );
        }
    }
}

/// The page's DOM as Chromium built it.
async fn dump_dom(bin: &Path, url: &str) -> String {
    chromium(bin, url, &["--dump-dom"]).await
}

/// A screenshot of `url` at 1200×800 into `png`; returns the file's bytes.
async fn screenshot(bin: &Path, url: &str, png: &Path) -> Vec<u8> {
    let _ = std::fs::remove_file(png);
    chromium(
        bin,
        url,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1200,800",
            "--hide-scrollbars",
        ],
    )
    .await;
    std::fs::read(png).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", png.display()))
}

/// A PNG's width and height (from its IHDR chunk), after checking its signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(
        bytes.len() > 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
        "not a PNG ({} bytes)",
        bytes.len()
    );
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}

/// The `<tr data-session="name">…</tr>` row of `name` in the DOM.
fn row<'a>(dom: &'a str, name: &str) -> &'a str {
    let open = format!("<tr data-session=\"{name}\">");
    let at = dom
        .find(&open)
        .unwrap_or_else(|| panic!("no row for `{name}` in the page:\n{dom}"));
    let rest = &dom[at..];
    &rest[..rest.find("</tr>").expect("the row ends") + "</tr>".len()]
}

/// The text of the cell with class `class` in a row.
fn cell<'a>(row: &'a str, class: &str) -> &'a str {
    let open = format!("class=\"{class}");
    let at = row
        .find(&open)
        .unwrap_or_else(|| panic!("no `{class}` cell in {row}"));
    let rest = &row[at..];
    let text = &rest[rest.find('>').expect("the cell's tag ends") + 1..];
    &text[..text.find("</td>").expect("the cell ends")]
}

async fn sessions(url: &str) -> Vec<Value> {
    let list: Value = reqwest::get(format!("{url}/sessions"))
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("JSON");
    list["sessions"].as_array().expect("a list").clone()
}

async fn session(url: &str, name: &str) -> Value {
    sessions(url)
        .await
        .into_iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no session `{name}`"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_renders_every_session_and_a_reload_shows_fresh_figures() {
    let Some(bin) = chromium_or_skip() else {
        return;
    };
    let env = FakeEnv::new();
    // The failing session has its own fake environment: fake-claude counts process starts per
    // state dir.
    let broken_env = FakeEnv::new();
    let mut config = fake_config(
        &env,
        &[
            ("idle-agent", &Scenario::new()),
            ("chatty", &Scenario::new()),
        ],
    );
    config.supervisor.name = TREE_NAME.to_owned();
    let crashing = Scenario::new().fault(Fault::crash_mid_turn(3, CRASH_STDERR));
    let mut broken = agent("broken", &broken_env.options(&crashing).build().unwrap());
    // No restart allowed: its first crash fails it.
    broken.intensity = Some(0);
    config.sessions.push(broken);
    let server = start(config).await;
    let url = base(&server);

    for prompt in ["one", "two"] {
        let events = query_sse(&url, "chatty", prompt).await.collect().await;
        assert_eq!(
            done_text(&events).as_deref(),
            Some(format!("fake reply to: {prompt}").as_str())
        );
    }
    let crashed = query_sse(&url, "broken", "crash").await.collect().await;
    assert_eq!(
        crashed.last().map(|e| e.event.as_str()),
        Some("error"),
        "{crashed:?}"
    );
    // The keeper marks it failed once it has seen the exit; bounded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while session(&url, "broken").await["state"] != "failed" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "`broken` did not fail: {}",
            session(&url, "broken").await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = format!("{url}/");
    let dom = dump_dom(&bin, &page).await;
    // The name is text: Chromium built no element from it, and serialises it escaped.
    let escaped = "ops &lt;i id=\"injected\"&gt;&amp;&lt;/i&gt; co";
    assert!(
        dom.contains(&format!("<title>{escaped} — sessions</title>")),
        "{dom}"
    );
    assert!(dom.contains(&format!("<h1>{escaped}</h1>")), "{dom}");
    assert!(!dom.contains("<i id=") && !dom.contains("<b id="), "{dom}");
    assert!(dom.contains("3 session(s)"), "{dom}");
    for (name, state, turns) in [
        ("idle-agent", "running", "0"),
        ("chatty", "running", "2"),
        ("broken", "failed", "0"),
    ] {
        let row = row(&dom, name);
        assert_eq!(cell(row, "name"), name, "{row}");
        assert_eq!(cell(row, "state"), state, "{row}");
        assert!(
            row.contains(&format!("class=\"state state-{state}\"")),
            "{row}"
        );
        assert_eq!(cell(row, "turns"), turns, "{row}");
        assert_eq!(cell(row, "owner"), "this server", "{row}");
    }
    assert!(
        cell(row(&dom, "broken"), "reason").contains("restart intensity"),
        "{dom}"
    );

    // The refresh: one more turn, then the page again shows it.
    let events = query_sse(&url, "chatty", "three").await.collect().await;
    assert_eq!(done_text(&events).as_deref(), Some("fake reply to: three"));
    let again = dump_dom(&bin, &page).await;
    assert_eq!(cell(row(&again, "chatty"), "turns"), "3", "{again}");
    assert_eq!(cell(row(&again, "idle-agent"), "state"), "running");
    assert_eq!(cell(row(&again, "broken"), "state"), "failed");

    // The screenshot, kept for CI; compared with a blank page's so an empty render fails.
    let artifacts = target_dir().join("artifacts");
    std::fs::create_dir_all(&artifacts).expect("target/artifacts");
    let png = artifacts.join("status-page.png");
    let shot = screenshot(&bin, &page, &png).await;
    assert_eq!(png_size(&shot), (1200, 800), "{}", png.display());
    let blank_png = tempfile::tempdir().expect("a temp dir");
    let blank = screenshot(&bin, "about:blank", &blank_png.path().join("blank.png")).await;
    assert_eq!(png_size(&blank), (1200, 800));
    assert!(
        shot.len() > 2 * blank.len() && shot.len() > 8 * 1024,
        "the screenshot at {} ({} bytes) looks empty (a blank page is {} bytes)",
        png.display(),
        shot.len(),
        blank.len()
    );
    eprintln!("status page screenshot: {}", png.display());

    server.shutdown().await.unwrap();
    env.assert_all_gone().await;
    broken_env.assert_all_gone().await;
}
