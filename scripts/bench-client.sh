#!/usr/bin/env bash
# Requests/s of tether's pooled Client vs hyper-util's pooled legacy Client against the same
# local server (see BENCHMARKS.md). Options go to the benchmark: `--quick` for a smoke run,
# `--help` for the rest. Set CARGO_TARGET_DIR to build elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo run --release -p tether-bench --bin tether-bench -- "$@"
