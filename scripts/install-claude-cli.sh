#!/usr/bin/env bash
# Installs a Claude Code CLI for the real-CLI tests, outside the repository.
#
#   scripts/install-claude-cli.sh            # the pinned version
#   scripts/install-claude-cli.sh 2.1.332    # an exact version
#   scripts/install-claude-cli.sh latest     # the newest release on the npm registry
#
# Installs @anthropic-ai/claude-code@$VERSION with npm into
#   ${CLAUDE_SUPERVISOR_CACHE:-$HOME/.cache/claude-supervisor}/cli-$VERSION
# and reuses that install when its binary already reports $VERSION. The binary's path is the
# last line of stdout (tests find it there by default; or export CLAUDE_REAL_CLI=<that path>).
# Progress and errors go to stderr. Idempotent.
#
# Exit status: 0 installed (or already there); 1 any failure; 3 `latest` was asked for but the
# npm registry could not be reached to resolve it (CI skips that run, loudly, on 3).
set -euo pipefail

# The pinned version. It must equal `claude_protocol::SUPPORTED_CLI.pinned`; the test
# crates/testing/tests/cli_versions_agree.rs fails when the two drift apart.
PINNED_VERSION="2.1.329"
NPM_PACKAGE="@anthropic-ai/claude-code"

die() {
    echo "install-claude-cli: error: $*" >&2
    exit 1
}
say() {
    echo "install-claude-cli: $*" >&2
}

[ "$#" -le 1 ] || die "usage: $0 [VERSION|latest] (got $# arguments)"
REQUESTED="${1:-$PINNED_VERSION}"
if [ "$REQUESTED" = "latest" ]; then
    command -v npm >/dev/null 2>&1 || die "npm not found; install Node.js (20 or newer) with npm, then run this again"
    if ! VERSION="$(timeout 60 npm view "$NPM_PACKAGE" version 2>/dev/null)" || [ -z "$VERSION" ]; then
        echo "install-claude-cli: error: cannot resolve 'latest': the npm registry did not answer \`npm view $NPM_PACKAGE version\`" >&2
        exit 3
    fi
    say "latest $NPM_PACKAGE on the registry is $VERSION"
else
    VERSION="$REQUESTED"
fi
[[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "not a version (expected X.Y.Z or latest): '$VERSION'"
PACKAGE="$NPM_PACKAGE@${VERSION}"

case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) PLATFORM="linux-x64" ;;
    Linux-aarch64 | Linux-arm64) PLATFORM="linux-arm64" ;;
    *) die "unsupported platform $(uname -s)-$(uname -m) (the tests need Linux x86_64 or aarch64)" ;;
esac

if [ -n "${CLAUDE_SUPERVISOR_CACHE:-}" ]; then
    CACHE="$CLAUDE_SUPERVISOR_CACHE"
elif [ -n "${HOME:-}" ]; then
    CACHE="$HOME/.cache/claude-supervisor"
else
    die "neither CLAUDE_SUPERVISOR_CACHE nor HOME is set"
fi
PREFIX="$CACHE/cli-$VERSION"
BIN="$PREFIX/node_modules/@anthropic-ai/claude-code-$PLATFORM/claude"

# Refuse to install into the repository (the binary is ~380 MB).
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
case "$(realpath -m "$CACHE")/" in
    "$REPO_ROOT"/*) die "cache directory $CACHE is inside the repository $REPO_ROOT; choose another CLAUDE_SUPERVISOR_CACHE" ;;
esac

# Prints the version the binary reports, run with a harmless environment: no network target
# but loopback, no telemetry, no updater, and a throwaway HOME/TMPDIR.
binary_version() {
    local scratch out
    scratch="$(mktemp -d)"
    out="$(
        cd "$scratch" &&
            env -u CLAUDECODE \
                HOME="$scratch" CLAUDE_CONFIG_DIR="$scratch" \
                TMPDIR="$scratch" CLAUDE_CODE_TMPDIR="$scratch" \
                ANTHROPIC_BASE_URL="http://127.0.0.1:9" ANTHROPIC_API_KEY="sk-ant-test-dummy-key" \
                CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 \
                CLAUDE_CODE_MAX_RETRIES=0 \
                timeout 60 "$1" --version </dev/null 2>/dev/null
    )" || true
    rm -rf "$scratch"
    printf '%s\n' "$out" | awk 'NR == 1 { print $1 }'
}

if [ -x "$BIN" ] && [ "$(binary_version "$BIN")" = "$VERSION" ]; then
    say "already installed: $PACKAGE"
    echo "$BIN"
    exit 0
fi

command -v npm >/dev/null 2>&1 || die "npm not found; install Node.js (20 or newer) with npm, then run this again"
command -v node >/dev/null 2>&1 || die "node not found; install Node.js (20 or newer), then run this again"

say "installing $PACKAGE into $PREFIX (npm may warn about engines; that is fine)"
mkdir -p "$PREFIX"
# A package.json of our own keeps npm from walking up to some other project.
[ -f "$PREFIX/package.json" ] || echo '{"name":"claude-supervisor-cli-cache","private":true}' >"$PREFIX/package.json"
if ! npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error "$PACKAGE" >&2; then
    die "npm install $PACKAGE failed (see npm's output above); check the network or the npm registry settings"
fi

[ -f "$BIN" ] || die "npm finished but $BIN is missing (was the optional platform package @anthropic-ai/claude-code-$PLATFORM skipped? try again without --omit=optional / --no-optional)"
[ -x "$BIN" ] || chmod +x "$BIN"
GOT="$(binary_version "$BIN")"
[ "$GOT" = "$VERSION" ] || die "installed binary $BIN reports version '${GOT:-nothing}', expected $VERSION"

say "installed $PACKAGE"
echo "$BIN"
