#!/usr/bin/env bash
# The project's test command: installs what a fresh Debian 12 machine lacks, then
# checks formatting and lints, runs every test (unit, and integration against real
# containerd 1.6/1.7/2.1, docker-registry and dbus-daemon; the crash-injection tests
# need --features failpoints), smoke-runs the benchmarks, and fuzzes each fuzz target
# for a bounded time. Needs root: the lab adds its registry name to /etc/hosts and
# runs containerd.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo fmt --check
cargo clippy --workspace --all-targets --locked --features failpoints -- -D warnings
cargo test --locked --workspace --features failpoints
# The benchmarks in smoke mode: small inputs, correctness checks, no timing claims.
cargo test --locked --benches
bash scripts/fuzz.sh
