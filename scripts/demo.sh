#!/usr/bin/env bash
# The demo: installs what is missing, then runs a lab containerd 2.1.9 and a TLS
# registry with a private CA, and shows ctrdiag's commands against them. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh >/dev/null
exec cargo test --quiet --test demo
