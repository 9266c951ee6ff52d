#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the peers the interop tests need,
# then runs every test of the workspace with those peers required (none is skipped).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/peers.sh
export TETHER_PYTHON="$PWD/target/peers-venv/bin/python"
export TETHER_REQUIRE_PEERS=1
cargo test --workspace "$@"
