#!/bin/sh
# test.sh: everything CI checks, as root: dependencies, formatting, lints,
# unit tests and the integration tests that run real containers.
set -eu
cd "$(dirname "$0")/.."
contrib/install-deps.sh
contrib/fetch-containerd.sh  # containerd 1.7 and 2.x beside the installed 1.6
contrib/install-engines.sh   # Docker, Podman and a CRI client for the engine tests
cargo fmt --all --check
cargo clippy --workspace --all-targets -q -- -D warnings
cargo test --workspace
contrib/test-vm.sh           # cgroup v2, delegated rootless cgroups and AppArmor, in a VM
