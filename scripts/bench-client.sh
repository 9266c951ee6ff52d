#!/usr/bin/env bash
# Requests/s of tether's pooled Client vs hyper-util's pooled legacy Client against the same
# local server (see BENCHMARKS.md). Options go to the benchmark: `--quick` for a smoke run,
# `--help` for the rest. Set CARGO_TARGET_DIR to build elsewhere.
#
#   scripts/bench-client.sh               # requests/s, both layouts, 5 runs (tether-bench)
#   scripts/bench-client.sh --quick       # smoke run
#   scripts/bench-client.sh --callgrind   # instructions and allocations per request
#
# --callgrind counts, with valgrind's callgrind (installed from Debian if missing), the
# user-space instructions and heap allocations per request of each client, one request at
# a time and with 16 tasks sharing one client. The server (the hyper_hello binary) runs
# outside valgrind on core 1, the client under it on core 0. Each client and scenario runs
# twice, with a small and a large number of requests, and the difference is divided by the
# difference in requests, so start-up, warm-up and exit cancel out. Stable on a noisy
# machine, unlike requests/s. `--no-build` uses the binaries already built.
set -euo pipefail
cd "$(dirname "$0")/.."

callgrind=0
skip_build=0
forward=()
for arg in "$@"; do
    case "$arg" in
        --callgrind) callgrind=1 ;;
        --no-build) skip_build=1 ;;
        *) forward+=("$arg") ;;
    esac
done
target_dir="${CARGO_TARGET_DIR:-target}"

if [ "$callgrind" -eq 0 ]; then
    if [ "$skip_build" -eq 1 ]; then
        exec "$target_dir/release/tether-bench" "${forward[@]}"
    fi
    exec cargo run --release -p tether-bench --bin tether-bench -- "${forward[@]}"
fi

# --- instructions and allocations per request (callgrind) -------------------------------
[ "${#forward[@]}" -eq 0 ] || { echo "--callgrind takes no other options" >&2; exit 2; }
# need_valgrind, wait_until, port_free, callgrind_counts, scratch_dir.
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
need_valgrind
if [ "$skip_build" -eq 0 ]; then
    echo "== building release binaries (tether-bench, hyper_hello)"
    cargo build --release -p tether-bench --bin tether-bench --bin hyper_hello
fi
bench="$target_dir/release/tether-bench"
server="$target_dir/release/hyper_hello"
for bin in "$bench" "$server"; do
    [ -x "$bin" ] || { echo "not built: $bin" >&2; exit 1; }
done

port=18082
small=1000
large=6000
scratch_dir

port_free "$port" || { echo "port $port is already in use" >&2; exit 1; }
TOKIO_WORKER_THREADS=1 taskset -c 1 "$server" --addr "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
wait_until 100 0.1 "$server_pid" "hyper_hello did not answer:" "$work/server.log" \
    curl -sf -o /dev/null -m 1 "http://127.0.0.1:$port/"

# count CLIENT SCENARIO N: "instructions allocations" of one run of N requests.
count() {
    local client="$1" scenario="$2" n="$3" sequential=0 concurrent=0
    if [ "$scenario" = sequential ]; then sequential="$n"; else concurrent="$n"; fi
    local out="$work/cg.$client.$scenario.$n"
    taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out.1" \
        "$bench" --server-addr "127.0.0.1:$port" --only "$client" --layout free --runs 1 \
        --warmup 200 --tasks 16 --sequential "$sequential" --concurrent "$concurrent" \
        >"$out.log" 2>&1 || { echo "the $client client failed:" >&2; cat "$out.log" >&2; exit 1; }
    callgrind_counts "$out"
}

echo "== user-space instructions and allocations per request of the client (callgrind," \
    "whole process; ($large - $small) requests' difference), against hyper_hello"
echo
printf '| %-10s | %-10s | %21s | %15s | %20s |\n' client scenario "instructions/request" \
    "vs hyper-util" "allocations/request"
printf '|%s|%s|%s|%s|%s|\n' "------------" "------------" "----------------------:" \
    "----------------:" "---------------------:"
for scenario in sequential concurrent; do
    hyper_per_request=""
    for client in hyper tether; do
        read -r i_small a_small <<<"$(count "$client" "$scenario" "$small")"
        read -r i_large a_large <<<"$(count "$client" "$scenario" "$large")"
        per_request=$(((i_large - i_small) / (large - small)))
        hyper_per_request="${hyper_per_request:-$per_request}"
        label="$scenario"
        [ "$scenario" = concurrent ] && label="16 tasks"
        name="$client"
        [ "$client" = hyper ] && name="hyper-util"
        awk -v c="$name" -v s="$label" -v i="$per_request" -v h="$hyper_per_request" \
            -v a=$((a_large - a_small)) -v n=$((large - small)) \
            'BEGIN {printf "| %-10s | %-10s | %21d | %14.2fx | %20.2f |\n", c, s, i, i / h, a / n}'
    done
done
echo
echo "   vs hyper-util: instructions per request over hyper-util's (below 1: tether runs fewer)."
