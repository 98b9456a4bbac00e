#!/usr/bin/env bash
# Instructions per frame under callgrind, through a claude-session `Session` and through the
# floor (read lines, `serde_json::from_slice::<Value>` each), on the same replayed turns
# (crates/claude-session/benches/io_profile.rs). Each contender runs once on a small turn and once
# on a big one; the difference over the difference in frames is its cost per frame, so start-up
# (spawn, `initialize`, runtime) cancels out. Only this process is counted, not fake-claude.
#
#   scripts/io_instructions.sh OUT.json SMALL_TURN BIG_TURN FAKE_CLAUDE_BIN
#
# Installs valgrind from Debian's packages when it is missing and this runs as root; without it,
# OUT says "not run" and why. Exits non-zero only when a measured run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="$1" SMALL="$2" BIG="$3" FAKE="$4"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"

not_run() {
    python3 -c 'import json, sys; print(json.dumps({"status": "not run", "reason": sys.argv[1]}))' "$1" >"$OUT"
    echo "io_instructions: not run: $1" >&2
    exit 0
}

if ! command -v valgrind >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing valgrind (apt-get)"
    apt-get install -y -q valgrind >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q valgrind >/dev/null 2>&1; } || true
fi
command -v valgrind >/dev/null 2>&1 || not_run "valgrind is not installed (apt-get install valgrind)"

EXE="$(cargo bench -p claude-session --bench io_profile --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, sys
exes = [m["executable"] for m in map(json.loads, sys.stdin)
        if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "io_profile"]
print(exes[-1] if exes else "")')"
[ -x "$EXE" ] || { echo "io_instructions: could not build the io_profile bench" >&2; exit 1; }

# One run: prints "<instructions> <frames>".
measure() {
    local log
    log="$(FAKE_CLAUDE_BIN="$FAKE" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$EXE" "$1" "$2" 2>&1)" || {
        echo "io_instructions: $1 on $2 failed:" >&2
        echo "$log" | tail -n 20 >&2
        exit 1
    }
    local ir frames
    ir="$(echo "$log" | sed -n 's/.*I *refs: *//p' | tr -d ', ')"
    frames="$(echo "$log" | sed -n "s/^$1: \([0-9]*\) frames$/\1/p")"
    echo "$ir $frames"
}

echo "== instructions per frame (callgrind): floor and ours, $SMALL and $BIG"
read -r floor_small_ir floor_small_frames < <(measure floor "$SMALL")
read -r floor_big_ir floor_big_frames < <(measure floor "$BIG")
read -r ours_small_ir ours_small_frames < <(measure ours "$SMALL")
read -r ours_big_ir ours_big_frames < <(measure ours "$BIG")

python3 - "$OUT" "$(valgrind --version)" \
    "$floor_small_ir" "$floor_small_frames" "$floor_big_ir" "$floor_big_frames" \
    "$ours_small_ir" "$ours_small_frames" "$ours_big_ir" "$ours_big_frames" <<'PY'
import json, sys
out, version = sys.argv[1], sys.argv[2]
fs_ir, fs_n, fb_ir, fb_n, os_ir, os_n, ob_ir, ob_n = map(int, sys.argv[3:])
floor = (fb_ir - fs_ir) / (fb_n - fs_n)
ours = (ob_ir - os_ir) / (ob_n - os_n)
doc = {
    "status": "ok",
    "valgrind": version,
    "frames": {"small": fs_n, "big": fb_n},
    "floor_per_frame": round(floor),
    "ours_per_frame": round(ours),
    "ours_over_floor": round(ours / floor, 3),
    "raw": {"floor": [fs_ir, fb_ir], "ours": [os_ir, ob_ir]},
}
json.dump(doc, open(out, "w"), indent=1)
print(f"io_instructions: floor {floor:,.0f}, ours {ours:,.0f} instructions per frame ({ours / floor:.2f} of the floor)")
PY
