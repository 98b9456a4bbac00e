#!/usr/bin/env bash
# The I/O-path benchmark, end to end (`just bench`): fake-claude in release, the pinned Python SDK
# in a venv, the pinned Rust peer, then crates/claude-session/benches/turn_throughput.rs, whose JSON
# becomes docs/perf/io.json, the chart docs/perf/io.svg and the generated section of
# docs/performance.md (between <!-- bench:io:start --> and <!-- bench:io:end -->), with the
# instructions per frame under callgrind of the floor and of a Session (scripts/io_instructions.sh).
#
# BENCH_QUICK=1: a smoke run (fewer frames and rounds) written under target/bench-io/ only.
# FRAMES / ROUNDS override the sizes. A peer that cannot be installed or built is reported loudly
# and shows "not run" in the results; nothing is ever copied from an earlier run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned peers: change here (and re-lock benches/peers/rust-sdk) to move them.
PY_SDK_VERSION="0.2.189"
VENV="target/bench-venv"
PEERS_TARGET="target/bench-peers"
RUST_PEER_MANIFEST="benches/peers/rust-sdk/Cargo.toml"

export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
shout() { printf '\n!!! bench.sh: %s\n\n' "$*" >&2; }

if [[ "${BENCH_QUICK:-0}" != "0" && -n "${BENCH_QUICK:-}" ]]; then
    OUT_DIR="target/bench-io"
    DOC_ARGS=(--section target/bench-io/section.md)
else
    OUT_DIR="docs/perf"
    DOC_ARGS=(--doc docs/performance.md)
fi
mkdir -p "$OUT_DIR" target/bench-io

echo "== fake-claude (release)"
cargo build --release -p claude-testing --bins
FAKE="$PWD/target/release/fake-claude"

echo "== Python peer: claude-agent-sdk==$PY_SDK_VERSION in $VENV"
unset BENCH_PYTHON BENCH_PYTHON_ERROR
have_sdk() {
    "$VENV/bin/python" -c "import claude_agent_sdk, sys; sys.exit(claude_agent_sdk.__version__ != '$PY_SDK_VERSION')" 2>/dev/null
}
if ! have_sdk; then
    if { [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"; } \
        && "$VENV/bin/pip" install --quiet --disable-pip-version-check "claude-agent-sdk==$PY_SDK_VERSION" \
            > target/bench-io/pip.log 2>&1 \
        && have_sdk; then
        :
    else
        export BENCH_PYTHON_ERROR="could not install claude-agent-sdk==$PY_SDK_VERSION into $VENV: $(tail -n 1 target/bench-io/pip.log 2>/dev/null || echo 'python3 -m venv failed')"
        shout "$BENCH_PYTHON_ERROR"
    fi
fi
if [[ -z "${BENCH_PYTHON_ERROR:-}" ]]; then
    export BENCH_PYTHON="$PWD/$VENV/bin/python"
fi

echo "== Rust peer: $RUST_PEER_MANIFEST into $PEERS_TARGET"
unset BENCH_RUST_PEER BENCH_RUST_PEER_ERROR
if CARGO_TARGET_DIR="$PEERS_TARGET" cargo build --release --locked --manifest-path "$RUST_PEER_MANIFEST"; then
    export BENCH_RUST_PEER="$PWD/$PEERS_TARGET/release/bench-peer-rust-sdk"
else
    export BENCH_RUST_PEER_ERROR="could not build $RUST_PEER_MANIFEST (claude-agent-sdk-rs from crates.io)"
    shout "$BENCH_RUST_PEER_ERROR"
fi

echo "== turn_throughput"
FAKE_CLAUDE_BIN="$FAKE" BENCH_OUT="$PWD/$OUT_DIR/io.json" \
    cargo bench -p claude-session --bench turn_throughput

# Instructions per frame under callgrind (scripts/io_instructions.sh), merged into the results.
if [[ "${BENCH_QUICK:-0}" != "0" && -n "${BENCH_QUICK:-}" ]]; then BIG_FRAMES="${FRAMES:-20000}"; else BIG_FRAMES="${FRAMES:-100000}"; fi
bash scripts/io_instructions.sh target/bench-io/instructions.json target/bench-io/turn-small.jsonl \
    "target/bench-io/turn-$BIG_FRAMES.jsonl" "$FAKE"
python3 - "$OUT_DIR/io.json" target/bench-io/instructions.json <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["instructions"] = json.load(open(sys.argv[2]))
json.dump(doc, open(sys.argv[1], "w"), indent=1)
PY
echo "== chart and docs"
python3 scripts/bench_chart.py "$OUT_DIR/io.json" "$OUT_DIR/io.svg" "${DOC_ARGS[@]}"
echo "bench.sh: wrote $OUT_DIR/io.json, $OUT_DIR/io.svg and ${DOC_ARGS[1]}"
