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

# Benchmarks (release builds; they print their figures).
bench:
    cargo bench --workspace

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# What CI runs.
ci:
    bash .ci/run
