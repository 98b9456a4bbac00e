#!/usr/bin/env bash
# The project's main job: installs the pinned Claude Code CLI if it is missing (into a cache outside
# the repo), then runs the agent server (`claude-supervisor serve`) on the CI reviewer of
# crates/server/examples/ci-reviewer.toml, sends it diffs over HTTP with `claude-supervisor query`,
# prints the streamed reviews and its health, and stops it with SIGTERM (the drain).
# With ANTHROPIC_API_KEY set it talks to the real API; without, it runs offline against the
# project's fake Messages API and says so first. EXAMPLE=<name> runs one of the library's examples
# (examples/*.rs) instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
if [ -z "${CLAUDE_CLI_PATH:-}" ]; then
    log=$(mktemp)
    if ! CLAUDE_CLI_PATH=$(bash scripts/install-claude-cli.sh 2>"$log" | tail -n 1) || [ ! -x "$CLAUDE_CLI_PATH" ]; then
        cat "$log" >&2
        rm -f "$log"
        echo "error: could not install the Claude Code CLI (see above)" >&2
        exit 1
    fi
    rm -f "$log"
    export CLAUDE_CLI_PATH
fi
if [ -n "${EXAMPLE:-}" ]; then
    exec cargo run --quiet --example "$EXAMPLE" -- "$@"
fi
cargo build --quiet -p claude-supervisor-server --bin claude-supervisor --example ci_reviewer_server
exec "${CARGO_TARGET_DIR:-target}/debug/examples/ci_reviewer_server" "$@"
