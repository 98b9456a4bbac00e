# The developer's commands. `just` is optional: each recipe is one plain command.

# Build everything.
build:
    cargo build --workspace --all-targets

# The test command of the README (installs the pinned real CLI, then runs every test).
test *ARGS:
    bash scripts/test.sh {{ARGS}}

# Only the tests that drive the real Claude CLI.
e2e:
    CLAUDE_REQUIRE_REAL_CLI=1 bash scripts/test.sh real_cli

# Install the pinned real CLI into the cache and print its path.
install-cli:
    bash scripts/install-claude-cli.sh

# The I/O-path benchmark against the floor, the emitter's ceiling and the Python and Rust SDKs:
# writes docs/perf/io.json, docs/perf/io.svg and its section of docs/performance.md
# (BENCH_QUICK=1 for a smoke run under target/bench-io/).
bench:
    bash scripts/bench.sh

# Every benchmark of the workspace (release builds; they print their figures).
bench-all:
    cargo bench --workspace

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# What CI runs.
ci:
    bash .ci/run

# The main job: the agent server on the CI reviewer config, sent diffs over HTTP.
run:
    bash scripts/run.sh

# The server on a config of yours (or the embedded defaults).
serve *ARGS:
    cargo run -p claude-supervisor-server --bin claude-supervisor -- serve {{ARGS}}

# The HTTP API fuzzed with Schemathesis against its OpenAPI document.
fuzz:
    bash scripts/api-fuzz.sh
