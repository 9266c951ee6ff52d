#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the peers the interop tests need,
# then runs every test of the workspace with those peers required (none is skipped), and the
# WebAssembly package's tests in Node, Deno, Bun and workerd (scripts/wasm-test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/peers.sh
export TETHER_PYTHON="$PWD/target/peers-venv/bin/python"
export TETHER_REQUIRE_PEERS=1
cargo test --workspace "$@"
# An axum router on tether: its own workspace (see tests/axum/Cargo.toml).
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}" cargo test --manifest-path tests/axum/Cargo.toml "$@"

# The WebAssembly package: node --test, then the same tests under Deno and Bun, and workerd.
scripts/wasm-test.sh
