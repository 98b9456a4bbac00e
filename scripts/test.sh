#!/usr/bin/env bash
# The project's test command. Installs the pinned real Claude Code CLI into a cache outside the
# repo (reused when present), then runs every test of the workspace: unit, integration, doc tests,
# and the real-CLI suite (which drives the real CLI against our fake Messages API on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"

if cli_path=$(bash scripts/install-claude-cli.sh | tail -n 1) && [ -x "$cli_path" ]; then
    export CLAUDE_REAL_CLI="$cli_path"
    echo "real Claude CLI: $CLAUDE_REAL_CLI"
elif [ "${CLAUDE_REQUIRE_REAL_CLI:-0}" = "1" ]; then
    echo "error: the real Claude CLI could not be installed, and CLAUDE_REQUIRE_REAL_CLI=1" >&2
    exit 1
else
    echo "WARNING: the real Claude CLI could not be installed: the real-CLI tests will be SKIPPED" >&2
fi

cargo test --workspace "$@"
