#!/usr/bin/env bash
# Benchmarks of the WebAssembly package in Node, side by side with what Node users run today
# (BENCHMARKS.md has the results):
#   client     keep-alive GETs with the body read, 1 and 16 at once, against the tokio demo
#              (release, one worker): tether's package vs undici vs Node's fetch
#   server     wrk against a hello-world: tether's package Server vs node:http
#   websocket  echo of 16 B and 16 KiB binary messages (the ws package's client): tether's
#              package Server vs the ws package's server
# Servers run pinned to core 0, load generators to core 1; each pair alternates order.
#
#   scripts/bench-wasm.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=5
rounds=3
if [[ ${1:-} == --quick ]]; then
    seconds=2
    rounds=1
fi

command -v wrk >/dev/null || { sudo apt-get update -qq && sudo apt-get install -y -qq wrk; }
scripts/wasm-build.sh
scripts/peers.sh
cargo build --quiet --release -p tether-tokio --example demo
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
entry=$PWD/wasm/pkg/node.js
undici=$PWD/target/peers-node/node_modules/undici/index.js
ws=$PWD/target/peers-node/node_modules/ws/index.js

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "bench-wasm: nothing listens on $1" >&2
    return 1
}

cpu_seconds() { awk '{ print ($14 + $15) / 100 }' "/proc/$1/stat"; }

echo "== client: tether package vs undici vs fetch (Node $(node --version)), ${seconds}s x ${rounds} rounds"
TOKIO_WORKER_THREADS=1 taskset -c 0 "$target_dir/release/examples/demo" --addr 127.0.0.1:18090 >/dev/null &
pids+=($!)
wait_port 18090
for concurrency in 1 16; do
    taskset -c 1 node wasm/bench/client.mjs http://127.0.0.1:18090/ "$seconds" "$concurrency" "$rounds" "$entry" "$undici" |
        tee /tmp/bench-wasm-client.jsonl | node -e '
const lines = require("fs").readFileSync(0, "utf8").trim().split("\n").map(JSON.parse);
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const by = {};
for (const l of lines) (by[l.name] ??= []).push(l);
const row = (n) => ({ rps: median(by[n].map((l) => l.rps)), perCpu: median(by[n].map((l) => l.perCpu)) });
const t = row("tether"), u = row("undici"), f = row("fetch");
console.log(`concurrency ${lines[0].concurrency}: tether ${t.rps.toFixed(0)} req/s (${t.perCpu.toFixed(0)}/CPU-s), undici ${u.rps.toFixed(0)} (${u.perCpu.toFixed(0)}), fetch ${f.rps.toFixed(0)} (${f.perCpu.toFixed(0)})`);
console.log(`  tether/undici ${(t.rps / u.rps).toFixed(2)}x req/s, ${(t.perCpu / u.perCpu).toFixed(2)}x per CPU-s; tether/fetch ${(t.rps / f.rps).toFixed(2)}x`);
'
done
cleanup
pids=()

echo "== server: tether package vs node:http, wrk -t1 -c16 ${seconds}s x ${rounds} rounds"
declare -A rps cpu
for round in $(seq "$rounds"); do
    order="tether node"
    ((round % 2 == 0)) && order="node tether"
    for kind in $order; do
        taskset -c 0 node wasm/bench/server.mjs "$kind" 18091 "$entry" >/dev/null &
        pid=$!
        wait_port 18091
        taskset -c 1 wrk -t1 -c16 -d1s http://127.0.0.1:18091/ >/dev/null
        before=$(cpu_seconds "$pid")
        out=$(taskset -c 1 wrk -t1 -c16 -d"${seconds}s" http://127.0.0.1:18091/)
        after=$(cpu_seconds "$pid")
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        r=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
        n=$(awk '/requests in/ { print $1 }' <<<"$out")
        rps[$kind]+="$r "
        cpu[$kind]+="$(awk -v n="$n" -v a="$after" -v b="$before" 'BEGIN { print n / (a - b) }') "
    done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
tr=$(median <<<"${rps[tether]}")
nr=$(median <<<"${rps[node]}")
tc=$(median <<<"${cpu[tether]}")
nc=$(median <<<"${cpu[node]}")
echo "tether ${tr} req/s (${tc} per server CPU-s), node:http ${nr} (${nc})"
awk -v a="$tr" -v b="$nr" -v c="$tc" -v d="$nc" 'BEGIN { printf "  tether/node:http %.2fx req/s, %.2fx per server CPU-s\n", a / b, c / d }'

echo "== websocket echo: tether package server vs ws server (ws client, 8 in flight), ${seconds}s"
for size in 16 16384; do
    declare -A mps=()
    for kind in tether ws; do
        taskset -c 0 node wasm/bench/ws.mjs server "$kind" 18092 "$entry" "$ws" >/dev/null &
        pid=$!
        wait_port 18092
        mps[$kind]=$(taskset -c 1 node wasm/bench/ws.mjs client ws://127.0.0.1:18092/ "$size" "$seconds" 8 "$ws" |
            node -e 'console.log(JSON.parse(require("fs").readFileSync(0, "utf8")).mps.toFixed(0))')
        kill "$pid"
        wait "$pid" 2>/dev/null || true
    done
    awk -v s="$size" -v a="${mps[tether]}" -v b="${mps[ws]}" 'BEGIN { printf "%6d B: tether %d msg/s, ws %d msg/s, tether/ws %.2fx\n", s, a, b, a / b }'
done
