#!/usr/bin/env bash
# The project's test command. Installs a real Claude Code CLI into a cache outside the repo
# (reused when present), then runs every test of the workspace: unit, integration, doc tests,
# and the real-CLI suite (which drives the real CLI against our fake Messages API on loopback).
#
#   scripts/test.sh [cargo test arguments...]
#   CLAUDE_CLI_VERSION=2.1.332 scripts/test.sh     # another supported version (or `latest`)
#
# The CLI is the pinned version unless CLAUDE_CLI_VERSION names another (see
# scripts/install-claude-cli.sh). Tests run with --no-fail-fast: one failing test binary never
# hides the results of the others.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"

# The PostgresStore and fleet tests run a real PostgreSQL server
# (claude_testing::postgres::TempPostgres): install Debian's server binaries when they are
# missing (as root, with apt-get); otherwise those tests skip loudly, or fail under
# CLAUDE_REQUIRE_REAL_CLI=1.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing PostgreSQL (server binaries for the store tests)"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
    else
        echo "WARNING: PostgreSQL's server binaries are missing and cannot be installed here (not root, or no apt-get): the PostgreSQL tests will be SKIPPED" >&2
    fi
fi

# The status page test renders `GET /` in a headless Chromium: install Debian's `chromium` when
# it is missing. A failed install skips that test loudly here, but fails the run in CI.
if [ ! -x /usr/bin/chromium ]; then
    echo "== installing Chromium (headless, for the status page test)"
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1 \
        && apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; then
        :
    elif [ "${CI:-}" = "true" ] || [ "${CLAUDE_REQUIRE_REAL_CLI:-0}" = "1" ]; then
        echo "error: Debian's chromium could not be installed (needed in CI by the status page test)" >&2
        exit 1
    else
        echo "WARNING: Debian's chromium could not be installed: the status page test will be SKIPPED" >&2
    fi
fi

install_args=()
if [ -n "${CLAUDE_CLI_VERSION:-}" ]; then
    install_args=("$CLAUDE_CLI_VERSION")
fi
if cli_path=$(bash scripts/install-claude-cli.sh ${install_args[@]+"${install_args[@]}"} | tail -n 1) && [ -x "$cli_path" ]; then
    export CLAUDE_REAL_CLI="$cli_path"
    echo "real Claude CLI: $CLAUDE_REAL_CLI"
elif [ "${CLAUDE_REQUIRE_REAL_CLI:-0}" = "1" ]; then
    echo "error: the real Claude CLI ${CLAUDE_CLI_VERSION:-(pinned)} could not be installed, and CLAUDE_REQUIRE_REAL_CLI=1" >&2
    exit 1
else
    echo "WARNING: the real Claude CLI could not be installed: the real-CLI tests will be SKIPPED" >&2
fi

cargo test --workspace --no-fail-fast "$@"
