#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (FUZZ_SECONDS each, default 20) with
# cargo-fuzz (libFuzzer + AddressSanitizer). cargo-fuzz needs nightly features; the
# stable toolchain provides them with RUSTC_BOOTSTRAP=1, so no other toolchain is needed.
# Ten targets at 20 s are 200 s of fuzzing; the build (three targets link the daemon's
# crate for the probe's parsers and the API's request checks) took 13 min from scratch
# on the 2-core CI machine, seconds when fuzz/target is kept.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-20}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --version 0.13.2
export RUSTC_BOOTSTRAP=1
targets=(registry_host image_reference classify config_toml journal_records credential_files hosts_toml_writer http_head cert_describe api_requests)
cargo fuzz build --fuzz-dir .
for t in "${targets[@]}"; do
    echo "fuzz: $t for ${seconds}s"
    log="$(mktemp)"
    if ! cargo fuzz run --fuzz-dir . "$t" -- -max_total_time="$seconds" >"$log" 2>&1; then
        grep -v "^ *at \|^ *[0-9]*: " "$log" | tail -n 40
        echo "fuzz: $t FAILED (artifacts under fuzz/artifacts/$t)"
        exit 1
    fi
    tail -n 1 "$log"
    rm -f "$log"
done
echo "fuzz: all targets ran clean"
