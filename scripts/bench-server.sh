#!/usr/bin/env bash
# Server load benchmark: `wrk` against the tether demo's `GET /` and against a hyper 1.x
# hello-world (bench/src/bin/hyper_hello.rs), same runtime setup (`#[tokio::main]` with
# TOKIO_WORKER_THREADS=1), the server pinned to core 0 and wrk to core 1, alternating which
# server goes first in each round. Prints, per server, the median requests/s, server CPU
# seconds (utime+stime from /proc/PID/stat around the wrk run), requests per server
# CPU-second, and the tether/hyper ratios. See BENCHMARKS.md.
#
#   scripts/bench-server.sh             # 3 rounds of 10 s, 50 connections
#   scripts/bench-server.sh --quick     # 1 round of 3 s (smoke run)
#   scripts/bench-server.sh --callgrind # instructions and allocations per request (valgrind)
#   scripts/bench-server.sh --axum      # the same axum router on tether and on axum::serve
#   scripts/bench-server.sh --help
#
# Needs Linux (/proc, taskset) and at least 2 cores; installs wrk with apt-get if missing.
# Set CARGO_TARGET_DIR to build elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3
duration=10
connections=50
warmup=1
port_tether=18080
port_hyper=18081
server_core=0
client_core=1
skip_build=0
callgrind=0
axum=0

usage() {
    cat <<'EOF'
usage: scripts/bench-server.sh [options]

  --rounds N         rounds; each runs both servers, alternating which goes first (3)
  --duration S       seconds of each measured wrk run (10)
  --connections C    wrk connections (50); wrk always runs one thread (-t1)
  --warmup S         seconds of an unmeasured wrk run before each measured one, 0 for none (1)
  --ports T,H        ports of the tether demo and the hyper server (18080,18081)
  --cores S,C        the cores of the server and of wrk (0,1)
  --quick            1 round of 3 s, no warm-up
  --callgrind        instead: user-space instructions and allocations per request of each
                     server, counted by valgrind's callgrind over one wrk run of --duration
                     (use --duration 5; valgrind is installed from Debian if missing). Stable
                     on a noisy machine, unlike requests/s.
  --axum             compare the same axum hello router (tests/axum) served by tether
                     (App::fallback_service) and by axum::serve (hyper), instead of the demo
                     and a bare hyper server; combines with --callgrind
  --no-build         use the release binaries already built
  -h, --help         this text
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds="${2:?--rounds needs a value}"; shift 2 ;;
        --duration) duration="${2:?--duration needs a value}"; duration="${duration%s}"; shift 2 ;;
        --connections) connections="${2:?--connections needs a value}"; shift 2 ;;
        --warmup) warmup="${2:?--warmup needs a value}"; warmup="${warmup%s}"; shift 2 ;;
        --ports) IFS=, read -r port_tether port_hyper <<<"${2:?--ports needs a value}"; shift 2 ;;
        --cores) IFS=, read -r server_core client_core <<<"${2:?--cores needs a value}"; shift 2 ;;
        --quick) rounds=1; duration=3; warmup=0; shift ;;
        --callgrind) callgrind=1; shift ;;
        --axum) axum=1; shift ;;
        --no-build) skip_build=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done
for n in "$rounds" "$duration" "$connections" "$warmup" "$port_tether" "$port_hyper" \
    "$server_core" "$client_core"; do
    case "$n" in ''|*[!0-9]*) echo "not a whole number: '$n'" >&2; exit 2 ;; esac
done
[ "$rounds" -ge 1 ] && [ "$duration" -ge 1 ] && [ "$connections" -ge 1 ] \
    || { echo "rounds, duration and connections must be at least 1" >&2; exit 2; }

# --- tools -----------------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
    echo "== installing wrk (Debian package)"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get install -y wrk || { $sudo apt-get update && $sudo apt-get install -y wrk; }
fi
for tool in taskset getconf curl awk; do
    command -v "$tool" >/dev/null 2>&1 || { echo "missing tool: $tool" >&2; exit 1; }
done
if [ "$(nproc --all)" -le "$((server_core > client_core ? server_core : client_core))" ]; then
    echo "cores $server_core and $client_core are not both present (nproc: $(nproc --all))" >&2
    exit 1
fi
clk_tck="$(getconf CLK_TCK)"

# --- build -----------------------------------------------------------------------------
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
if [ "$axum" -eq 1 ]; then
    label_tether="axum on tether"
    label_hyper="axum::serve"
    goal="1.00x: no slower than axum::serve"
    bin_tether="$target_dir/release/axum_hello_tether"
    bin_hyper="$target_dir/release/axum_hello_hyper"
    if [ "$skip_build" -eq 0 ]; then
        echo "== building release binaries (axum_hello_tether, axum_hello_hyper)"
        # tests/axum is a workspace of its own; build into the same target directory.
        CARGO_TARGET_DIR="$target_dir" cargo build --release \
            --manifest-path tests/axum/Cargo.toml --bins
    fi
else
    label_tether="tether demo"
    label_hyper="hyper 1.x http1"
    goal="1.20x"
    bin_tether="$target_dir/release/examples/demo"
    bin_hyper="$target_dir/release/hyper_hello"
    if [ "$skip_build" -eq 0 ]; then
        echo "== building release binaries (tether demo, hyper_hello)"
        # One invocation, so both share one feature resolution and one set of dependencies.
        cargo build --release -p tether-tokio -p tether-bench --example demo --bin hyper_hello
    fi
fi
for bin in "$bin_tether" "$bin_hyper"; do
    [ -x "$bin" ] || { echo "not built: $bin" >&2; exit 1; }
done

# --- one run ---------------------------------------------------------------------------
# cpu_ticks, cores_busy, port_free, wait_until, need_valgrind, callgrind_start,
# callgrind_counts, scratch_dir.
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
scratch_dir

# --- instructions per request ----------------------------------------------------------
if [ "$callgrind" -eq 1 ]; then
    need_valgrind
    echo "== user-space instructions and allocations per request (callgrind, all server" \
        "threads): wrk -t1 -c$connections -d${duration}s on GET /, counters zeroed once the" \
        "server answers"
    echo
    printf '| %-6s | %10s | %21s | %10s | %20s |\n' server requests "instructions/request" \
        "vs hyper" "allocations/request"
    printf '|%s|%s|%s|%s|%s|\n' "--------" "-----------:" "----------------------:" \
        "-----------:" "---------------------:"
    hyper_per_request=""
    for spec in "hyper $bin_hyper $port_hyper" "tether $bin_tether $port_tether"; do
        read -r name bin port <<<"$spec"
        url="http://127.0.0.1:$port/"
        out="$work/cg.$name"
        callgrind_start "$name" "$out" "$bin" "$port" curl -sf -o /dev/null -m 2 "$url"
        wrk -t1 -c"$connections" -d"${duration}s" "$url" >"$out.wrk"
        callgrind_control --dump "$server_pid" >/dev/null 2>&1
        kill "$server_pid"
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
        requests="$(awk '/ requests in / {print $1}' "$out.wrk")"
        read -r total allocs <<<"$(callgrind_counts "$out")"
        if [ -z "$requests" ] || [ "$requests" -eq 0 ] || [ -z "$total" ]; then
            echo "no count for $name (requests: '$requests', instructions: '$total')" >&2
            cat "$out.wrk" >&2
            exit 1
        fi
        per_request=$((total / requests))
        hyper_per_request="${hyper_per_request:-$per_request}"
        awk -v n="$name" -v q="$requests" -v i="$per_request" -v h="$hyper_per_request" \
            -v a="$allocs" \
            'BEGIN {printf "| %-6s | %10d | %21d | %9.2fx | %20.2f |\n", n, q, i, i / h, a / q}'
    done
    echo
    echo "   vs hyper: instructions per request over hyper's (below 1: tether runs fewer)."
    exit 0
fi

# run NAME BIN PORT ROUND: one measured run; appends "round rps cpu_s requests wall_s" to
# $work/NAME.tsv and keeps wrk's output in $work/NAME.ROUND.wrk.
run() {
    local name="$1" bin="$2" port="$3" round="$4"
    local url="http://127.0.0.1:$port/"
    port_free "$port" || { echo "port $port is already in use" >&2; exit 1; }
    RUST_LOG=warn TOKIO_WORKER_THREADS=1 taskset -c "$server_core" "$bin" --addr "127.0.0.1:$port" \
        >"$work/$name.$round.log" 2>&1 &
    server_pid=$!
    wait_until 100 0.1 "$server_pid" "$name did not answer on $url:" "$work/$name.$round.log" \
        curl -sf -o /dev/null -m 1 "$url"
    if [ "$warmup" -gt 0 ]; then
        taskset -c "$client_core" wrk -t1 -c"$connections" -d"${warmup}s" "$url" >/dev/null
    fi
    local before after t0 t1 busy0 busy1
    before="$(cpu_ticks "$server_pid")"
    busy0="$(cores_busy)"
    t0="$(date +%s.%N)"
    # bash's `time` gives wrk's own CPU seconds: near 100% of a core means the client is
    # the bottleneck and requests/s says little about the server.
    local TIMEFORMAT='%3U %3S'
    { time taskset -c "$client_core" wrk -t1 -c"$connections" -d"${duration}s" "$url" \
        >"$work/$name.$round.wrk"; } 2>"$work/$name.$round.time"
    t1="$(date +%s.%N)"
    busy1="$(cores_busy)"
    after="$(cpu_ticks "$server_pid")"
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""

    local out="$work/$name.$round.wrk" rps requests
    rps="$(awk '/^Requests\/sec:/ {print $2}' "$out")"
    requests="$(awk '/ requests in / {print $1}' "$out")"
    if [ -z "$rps" ] || [ -z "$requests" ]; then
        echo "could not read wrk's output for $name:" >&2
        cat "$out" >&2
        exit 1
    fi
    if grep -qE '^ *(Non-2xx|Socket errors)' "$out"; then
        echo "!! $name round $round: wrk reported errors:" >&2
        grep -E '^ *(Non-2xx|Socket errors)' "$out" | sed 's/^ */   /' >&2
        echo "$name round $round: $(grep -E '^ *(Non-2xx|Socket errors)' "$out" | tr -s ' ' | tr '\n' ';')" \
            >>"$work/errors"
    fi
    local cpu_s wall_s wrk_s other_s
    cpu_s="$(awk -v a="$before" -v b="$after" -v t="$clk_tck" 'BEGIN {printf "%.2f", (b - a) / t}')"
    wall_s="$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')"
    wrk_s="$(awk 'NF == 2 {printf "%.2f", $1 + $2}' "$work/$name.$round.time")"
    # The rest of the two cores' busy time: softirq work not charged to either process, and
    # anything else running there (another benchmark, a build), which makes the round noisy.
    other_s="$(awk -v a="$busy0" -v b="$busy1" -v t="$clk_tck" -v c="$cpu_s" -v k="${wrk_s:-0}" \
        'BEGIN {o = (b - a) / t - c - k; printf "%.2f", o < 0 ? 0 : o}')"
    printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$rps" "$cpu_s" "$requests" "$wall_s" >>"$work/$name.tsv"
    awk -v n="$name" -v r="$round" -v rps="$rps" -v c="$cpu_s" -v q="$requests" -v w="$wall_s" \
        -v k="${wrk_s:-0}" -v o="$other_s" \
        'BEGIN {printf "   round %d %-6s %7.0f req/s  server %5.2f CPU s (%3.0f%%)  %7.0f req/CPU-s  wrk %3.0f%%  other %3.0f%%%s\n",
                r, n, rps, c, 100 * c / w, (c > 0 ? q / c : 0), 100 * k / w, 100 * o / w,
                (o / w > 0.15 ? "  (noisy: other load on the cores)" : "")}'
}

echo "== wrk -t1 -c$connections -d${duration}s (warm-up ${warmup}s), $rounds round(s);" \
    "server on core $server_core (TOKIO_WORKER_THREADS=1), wrk on core $client_core"
echo "   per round: server and wrk CPU as % of a core; other = the rest of the two cores' busy time"
echo "   load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$work/tether.tsv"
: >"$work/hyper.tsv"
for round in $(seq 1 "$rounds"); do
    if [ $((round % 2)) -eq 1 ]; then
        run tether "$bin_tether" "$port_tether" "$round"
        run hyper "$bin_hyper" "$port_hyper" "$round"
    else
        run hyper "$bin_hyper" "$port_hyper" "$round"
        run tether "$bin_tether" "$port_tether" "$round"
    fi
done
echo "   load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"

# --- summary ---------------------------------------------------------------------------
# median FILE COLUMN-EXPRESSION: the median over rounds of an awk expression of the columns
# ($2 req/s, $3 CPU s, $4 requests).
median() {
    awk -F'\t' "{print $2}" "$1" | sort -g | awk '
        { v[NR] = $1 }
        END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
t_rps="$(median "$work/tether.tsv" '$2')"
h_rps="$(median "$work/hyper.tsv" '$2')"
t_cpu="$(median "$work/tether.tsv" '$3')"
h_cpu="$(median "$work/hyper.tsv" '$3')"
t_eff="$(median "$work/tether.tsv" '($3 > 0 ? $4 / $3 : 0)')"
h_eff="$(median "$work/hyper.tsv" '($3 > 0 ? $4 / $3 : 0)')"

echo
echo "medians over $rounds round(s), wrk -t1 -c$connections -d${duration}s, GET /:"
echo
awk -v tr="$t_rps" -v hr="$h_rps" -v tc="$t_cpu" -v hc="$h_cpu" -v te="$t_eff" -v he="$h_eff" \
    -v lt="$label_tether" -v lh="$label_hyper" -v goal="$goal" '
    function ratio(a, b) { return b > 0 ? sprintf("%.2fx", a / b) : "n/a" }
    BEGIN {
        printf "| server             | requests/s | server CPU s | requests / server CPU-s |\n"
        printf "|--------------------|-----------:|-------------:|------------------------:|\n"
        printf "| %-18s | %10.0f | %12.2f | %23.0f |\n", lt, tr, tc, te
        printf "| %-18s | %10.0f | %12.2f | %23.0f |\n", lh, hr, hc, he
        printf "| ratio tether/hyper | %10s | %12s | %23s |\n", ratio(tr, hr), ratio(tc, hc), ratio(te, he)
        printf "\n"
        printf "tether/hyper requests/s:                %s\n", ratio(tr, hr)
        printf "tether/hyper requests per CPU-second:   %s   (the one that counts; goal >= %s)\n", ratio(te, he), goal
    }'
if [ -s "$work/errors" ]; then
    echo
    echo "wrk reported errors:"
    cat "$work/errors"
    exit 1
fi
echo "wrk reported no non-2xx responses and no socket errors."
