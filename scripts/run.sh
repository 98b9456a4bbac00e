#!/usr/bin/env bash
# The project's main job: installs the pinned Claude Code CLI if it is missing (into a cache outside
# the repo), then runs the main example. With ANTHROPIC_API_KEY set it talks to the real API;
# without, it runs offline against the project's fake Messages API and says so first.
# The main example is the long-running CI reviewer; EXAMPLE=<name> runs another one.
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
exec cargo run --quiet --example "${EXAMPLE:-ci_reviewer}" -- "$@"
