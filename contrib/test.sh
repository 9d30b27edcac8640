#!/bin/sh
# test.sh: everything CI checks, as root: dependencies, formatting, lints,
# unit tests and the integration tests that run real containers.
set -eu
cd "$(dirname "$0")/.."
contrib/install-deps.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets -q -- -D warnings
cargo test --workspace
