#!/usr/bin/env bash
# WebSocket echo benchmark: tether's echo server (bench/src/bin/ws_echo_tether.rs) against
# fastwebsockets (ws_echo_fastwebsockets.rs) and tokio-tungstenite (ws_echo_tungstenite.rs),
# all on `#[tokio::main]` with TOKIO_WORKER_THREADS=1, the server pinned to core 0 and our
# own load client (ws_load.rs: one thread, plain TCP, one message in flight per connection,
# frames masked with the zero key) pinned to core 1. For each payload size (16 B and
# 16 KiB) and each round (rotating which server goes first), it measures messages/s (round
# trips per second) and the server's CPU seconds (utime+stime from /proc/PID/stat, over the
# measured window), and prints per round the ratios tether/fastwebsockets and
# tether/tungstenite, then their median and range. See BENCHMARKS.md.
#
#   scripts/bench-ws.sh                 # 5 rounds of 10 s per size, 16 connections
#   scripts/bench-ws.sh --quick         # 1 round of 3 s per size (smoke run)
#   scripts/bench-ws.sh --idle [N]      # server memory per idle connection (N = 10000)
#   scripts/bench-ws.sh --callgrind     # instructions and allocations per echo (valgrind)
#   scripts/bench-ws.sh --help
#
# Needs Linux (/proc, taskset) and at least 2 cores. Set CARGO_TARGET_DIR to build elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=5
duration=10
connections=16
warmup=1
sizes="16,16384"
port_tether=18090
port_fws=18091
port_tung=18092
server_core=0
client_core=1
skip_build=0
idle=0
callgrind=0

usage() {
    cat <<'EOF'
usage: scripts/bench-ws.sh [options]

  --rounds N         rounds per size; each runs the three servers, rotating which goes first (5)
  --duration S       seconds of each measured run (10)
  --connections C    load client connections, one message in flight on each (16)
  --warmup S         unmeasured seconds at the start of each run, 0 for none (1)
  --sizes LIST       payload sizes in bytes, comma-separated (16,16384)
  --ports T,F,G      ports of the tether, fastwebsockets and tungstenite servers (18090,18091,18092)
  --cores S,C        the cores of the server and of the load client (0,1)
  --quick            1 round of 3 s per size
  --idle [N]         instead: the server's memory per idle connection (RSS growth / N) with N
                     connections open and idle (10000), for each server started fresh
  --callgrind        instead: user-space instructions and allocations per echo of each
                     server, counted by valgrind's callgrind over a --duration run (use
                     --duration 5; valgrind is installed from Debian if missing). Stable on a
                     noisy machine, unlike messages/s.
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
        --sizes) sizes="${2:?--sizes needs a value}"; shift 2 ;;
        --ports) IFS=, read -r port_tether port_fws port_tung <<<"${2:?--ports needs a value}"; shift 2 ;;
        --cores) IFS=, read -r server_core client_core <<<"${2:?--cores needs a value}"; shift 2 ;;
        --quick) rounds=1; duration=3; shift ;;
        --idle)
            idle=10000
            if [ $# -ge 2 ] && [[ "$2" =~ ^[0-9]+$ ]]; then idle="$2"; shift; fi
            shift ;;
        --callgrind) callgrind=1; shift ;;
        --no-build) skip_build=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done
IFS=, read -r -a size_list <<<"$sizes"
for n in "$rounds" "$duration" "$connections" "$warmup" "$port_tether" "$port_fws" "$port_tung" \
    "$server_core" "$client_core" "$idle" "${size_list[@]}"; do
    case "$n" in ''|*[!0-9]*) echo "not a whole number: '$n'" >&2; exit 2 ;; esac
done
[ "$rounds" -ge 1 ] && [ "$duration" -ge 1 ] && [ "$connections" -ge 1 ] \
    || { echo "rounds, duration and connections must be at least 1" >&2; exit 2; }
[ "${#size_list[@]}" -ge 1 ] || { echo "--sizes is empty" >&2; exit 2; }

# --- tools -----------------------------------------------------------------------------
for tool in taskset getconf awk; do
    command -v "$tool" >/dev/null 2>&1 || { echo "missing tool: $tool" >&2; exit 1; }
done
if [ "$(nproc --all)" -le "$((server_core > client_core ? server_core : client_core))" ]; then
    echo "cores $server_core and $client_core are not both present (nproc: $(nproc --all))" >&2
    exit 1
fi
clk_tck="$(getconf CLK_TCK)"

# --- build -----------------------------------------------------------------------------
if [ "$skip_build" -eq 0 ]; then
    echo "== building release binaries (ws_echo_tether, ws_echo_fastwebsockets, ws_echo_tungstenite, ws_load)"
    # One invocation, so all share one feature resolution and one set of dependencies.
    cargo build --release -p tether-bench --bin ws_echo_tether --bin ws_echo_fastwebsockets \
        --bin ws_echo_tungstenite --bin ws_load
fi
target_dir="${CARGO_TARGET_DIR:-target}"
bin_load="$target_dir/release/ws_load"
for bin in ws_echo_tether ws_echo_fastwebsockets ws_echo_tungstenite ws_load; do
    [ -x "$target_dir/release/$bin" ] || { echo "not built: $target_dir/release/$bin" >&2; exit 1; }
done

# The servers: name, binary, port.
names=(tether fastwebsockets tungstenite)
declare -A bin_of=(
    [tether]="$target_dir/release/ws_echo_tether"
    [fastwebsockets]="$target_dir/release/ws_echo_fastwebsockets"
    [tungstenite]="$target_dir/release/ws_echo_tungstenite"
)
declare -A port_of=([tether]="$port_tether" [fastwebsockets]="$port_fws" [tungstenite]="$port_tung")

# --- servers ---------------------------------------------------------------------------
work="$(mktemp -d)"
server_pid=""
client_pid=""
stop_pid() {
    local pid="$1" tries=0
    kill "$pid" 2>/dev/null || return 0
    # tether shuts down gracefully on SIGTERM; give every server 5 s, then SIGKILL.
    while kill -0 "$pid" 2>/dev/null && [ "$tries" -lt 50 ]; do
        sleep 0.1
        tries=$((tries + 1))
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    if [ -n "$client_pid" ]; then stop_pid "$client_pid"; fi
    if [ -n "$server_pid" ]; then stop_pid "$server_pid"; fi
    rm -rf "$work"
}
trap cleanup EXIT

# cpu_ticks, cores_busy, port_free, wait_until, need_valgrind, callgrind_start,
# callgrind_counts.
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

# start_server NAME LOG SIZE: starts NAME pinned to the server core and waits until it
# echoes a text message and a binary one of SIZE bytes (ws_load --check); sets server_pid.
start_server() {
    local name="$1" log="$2" size="$3"
    local port="${port_of[$name]}"
    port_free "$port" || { echo "port $port is already in use" >&2; exit 1; }
    TOKIO_WORKER_THREADS=1 taskset -c "$server_core" "${bin_of[$name]}" --addr "127.0.0.1:$port" \
        >"$log" 2>&1 &
    server_pid=$!
    wait_until 100 0.1 "$server_pid" "$name did not echo on ws://127.0.0.1:$port/:" "$log" \
        "$bin_load" --check --addr "127.0.0.1:$port" --size "$size"
}

stop_server() {
    stop_pid "$server_pid"
    server_pid=""
}

# field LINE KEY: the value of KEY=value in ws_load's result line.
field() {
    awk -v k="$2" '{for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) print substr($i, length(k) + 2)}' \
        <<<"$1"
}

# --- idle memory -----------------------------------------------------------------------
if [ "$idle" -gt 0 ]; then
    need=$((idle + 256))
    hard="$(ulimit -Hn)"
    if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
        echo "--idle $idle needs $need file descriptors per process; the hard limit is $hard" \
            "(at most --idle $((hard - 256)))" >&2
        exit 1
    fi
    if [ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -lt "$need" ]; then
        ulimit -n "$need"
    fi
    echo "== memory per idle connection: $idle WebSocket connections (handshake done, nothing sent)"
    echo "   server on core $server_core (TOKIO_WORKER_THREADS=1), ws_load --idle on core $client_core;" \
        "each server started fresh; VmRSS from /proc/PID/status (ulimit -n $(ulimit -Sn))"
    echo
    printf '| %-14s | %14s | %14s | %22s | %9s |\n' server "RSS before KiB" "RSS after KiB" \
        "bytes per connection" "open s"
    printf '|%s|%s|%s|%s|%s|\n' "----------------" "---------------:" "---------------:" \
        "-----------------------:" "----------:"
    for name in tether tungstenite fastwebsockets; do
        log="$work/$name.idle.log"
        start_server "$name" "$log" 16
        sleep 0.5
        before="$(awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status")"
        # Held at most 10 minutes; stopped as soon as the measurement is taken.
        taskset -c "$client_core" "$bin_load" --idle "$idle" --hold 600 \
            --addr "127.0.0.1:${port_of[$name]}" >"$work/$name.idle.out" 2>&1 &
        client_pid=$!
        wait_until 3000 0.1 "$client_pid" "ws_load --idle $idle against $name did not get ready:" \
            "$work/$name.idle.out" grep -q '^ws_load idle ready' "$work/$name.idle.out"
        # Let the server finish what the last handshakes started (sessions, drivers).
        sleep 1
        after="$(awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status")"
        open_s="$(field "$(grep '^ws_load idle ready' "$work/$name.idle.out")" open_s)"
        stop_pid "$client_pid"
        client_pid=""
        stop_server
        awk -v n="$name" -v b="$before" -v a="$after" -v c="$idle" -v o="$open_s" \
            'BEGIN {printf "| %-14s | %14d | %14d | %22.0f | %9s |\n", n, b, a, (a - b) * 1024 / c, o}'
    done
    exit 0
fi

# --- instructions per echo --------------------------------------------------------------
if [ "$callgrind" -eq 1 ]; then
    need_valgrind
    echo "== user-space instructions and allocations per echo (callgrind, all server threads):" \
        "$connections connections, ${duration}s per server and size, counters zeroed once the" \
        "server is up"
    echo
    printf '| %-8s | %-14s | %10s | %18s | %14s | %17s |\n' size server echoes \
        "instructions/echo" "vs tether" "allocations/echo"
    printf '|%s|%s|%s|%s|%s|%s|\n' "----------" "----------------" "-----------:" \
        "-------------------:" "---------------:" "------------------:"
    for size in "${size_list[@]}"; do
        tether_per_echo=""
        for name in tether fastwebsockets tungstenite; do
            port="${port_of[$name]}"
            out="$work/cg.$name.$size"
            callgrind_start "$name" "$out" "${bin_of[$name]}" "$port" \
                "$bin_load" --check --addr "127.0.0.1:$port" --size "$size"
            line="$("$bin_load" --addr "127.0.0.1:$port" --connections "$connections" \
                --size "$size" --duration "$duration" --warmup 0 | grep '^ws_load ')"
            callgrind_control --dump "$server_pid" >/dev/null 2>&1
            stop_server
            echoes="$(field "$line" messages)"
            read -r total allocs <<<"$(callgrind_counts "$out")"
            if [ -z "$echoes" ] || [ "$echoes" -eq 0 ] || [ -z "$total" ]; then
                echo "no count for $name (echoes: '$echoes', instructions: '$total')" >&2
                exit 1
            fi
            per_echo=$((total / echoes))
            tether_per_echo="${tether_per_echo:-$per_echo}"
            awk -v s="$size" -v n="$name" -v e="$echoes" -v i="$per_echo" -v t="$tether_per_echo" \
                -v a="$allocs" \
                'BEGIN {printf "| %-8s | %-14s | %10d | %18d | %13.2fx | %17.2f |\n", s, n, e, i, i / t, a / e}'
        done
    done
    echo
    echo "   vs tether: the server's instructions per echo over tether's (above 1: tether runs"
    echo "   fewer). Callgrind counts each iteration of rep movs/stos as an instruction, so large"
    echo "   copies and zero-fills weigh more than they cost (see BENCHMARKS.md)."
    exit 0
fi

# --- load ------------------------------------------------------------------------------
# run NAME SIZE ROUND: one measured run; appends "round msgs/s server_cpu_s messages
# elapsed_s client_cpu_s" to $work/NAME.SIZE.tsv.
run() {
    local name="$1" size="$2" round="$3"
    local port="${port_of[$name]}" log="$work/$name.$size.$round"
    start_server "$name" "$log.log" "$size"
    local before after t0 t1 busy0 busy1
    before="$(cpu_ticks "$server_pid")"
    busy0="$(cores_busy)"
    t0="$(date +%s.%N)"
    # bash's `time` gives ws_load's CPU seconds over the whole run (warm-up included), for
    # the "other" column; ws_load itself reports its and the server's over the measured part.
    local TIMEFORMAT='%3U %3S'
    if ! { time taskset -c "$client_core" "$bin_load" --addr "127.0.0.1:$port" \
        --connections "$connections" --size "$size" --duration "$duration" --warmup "$warmup" \
        --server-pid "$server_pid" >"$log.out" 2>"$log.err"; } 2>"$log.time"; then
        echo "!! $name size $size round $round: ws_load failed:" >&2
        cat "$log.out" "$log.err" >&2
        echo "$name size $size round $round: $(tr '\n' ';' <"$log.err")" >>"$work/errors"
    fi
    t1="$(date +%s.%N)"
    busy1="$(cores_busy)"
    after="$(cpu_ticks "$server_pid")"
    stop_server

    local line mps cpu_s messages elapsed client_s
    line="$(grep '^ws_load ' "$log.out" || true)"
    mps="$(field "$line" messages_per_s)"
    cpu_s="$(field "$line" server_cpu_s)"
    messages="$(field "$line" messages)"
    elapsed="$(field "$line" duration_s)"
    client_s="$(field "$line" client_cpu_s)"
    if [ -z "$mps" ] || [ -z "$cpu_s" ] || [ "$cpu_s" = NA ]; then
        echo "could not read ws_load's output for $name:" >&2
        cat "$log.out" "$log.err" >&2
        exit 1
    fi
    # The rest of the two cores' busy time over the whole run: softirq work charged to
    # neither process, and anything else running there (another benchmark, a build), which
    # makes the round noisy.
    local wall_s other_s
    wall_s="$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')"
    other_s="$(awk -v a="$busy0" -v b="$busy1" -v s0="$before" -v s1="$after" -v t="$clk_tck" \
        -v k="$(awk 'NF == 2 {print $1 + $2}' "$log.time")" \
        'BEGIN {o = (b - a - (s1 - s0)) / t - k; printf "%.2f", o < 0 ? 0 : o}')"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$mps" "$cpu_s" "$messages" "$elapsed" "$client_s" \
        >>"$work/$name.$size.tsv"
    awk -v n="$name" -v mps="$mps" -v c="$cpu_s" -v q="$messages" -v e="$elapsed" \
        -v k="$client_s" -v o="$other_s" -v w="$wall_s" \
        'BEGIN {printf "     %-14s %9.0f msg/s  server %5.2f CPU s (%3.0f%%)  %9.0f msg/CPU-s  client %3.0f%%  other %3.0f%%%s\n",
                n, mps, c, 100 * c / e, (c > 0 ? q / c : 0), 100 * k / e, 100 * o / w,
                (o / w > 0.15 ? "  (noisy: other load on the cores)" : "")}'
}

# ratio_of SIZE ROUND A B COLUMN-EXPRESSION: A's value over B's in that round.
ratio_of() {
    local a b
    a="$(awk -F'\t' -v r="$2" "\$1 == r {print $5}" "$work/$3.$1.tsv")"
    b="$(awk -F'\t' -v r="$2" "\$1 == r {print $5}" "$work/$4.$1.tsv")"
    awk -v a="$a" -v b="$b" 'BEGIN {if (b > 0) printf "%.3f", a / b; else print "NA"}'
}

echo "== ws_load: $connections connections, one message in flight on each, ${duration}s measured" \
    "after ${warmup}s of warm-up, $rounds round(s) per size; server on core $server_core" \
    "(TOKIO_WORKER_THREADS=1), ws_load on core $client_core"
echo "   per run: server and client CPU as % of a core over the measured part;" \
    "other = the rest of the two cores' busy time"
echo "   load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for size in "${size_list[@]}"; do
    for name in "${names[@]}"; do : >"$work/$name.$size.tsv"; done
    : >"$work/ratios.$size.tsv"
    echo
    echo "-- payload $size bytes"
    for round in $(seq 1 "$rounds"); do
        echo "   round $round"
        # Rotate the order: round 1 tether first, round 2 fastwebsockets first, and so on.
        for i in 0 1 2; do
            run "${names[$(((round - 1 + i) % 3))]}" "$size" "$round"
        done
        rf="$(ratio_of "$size" "$round" tether fastwebsockets '$2')"
        rg="$(ratio_of "$size" "$round" tether tungstenite '$2')"
        ef="$(ratio_of "$size" "$round" tether fastwebsockets '($3 > 0 ? $4 / $3 : 0)')"
        eg="$(ratio_of "$size" "$round" tether tungstenite '($3 > 0 ? $4 / $3 : 0)')"
        printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$rf" "$rg" "$ef" "$eg" >>"$work/ratios.$size.tsv"
        echo "     msg/s tether/fastwebsockets ${rf}x  tether/tungstenite ${rg}x;" \
            "msg per server CPU-s ${ef}x ${eg}x"
    done
done
echo
echo "   load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"

# --- summary ---------------------------------------------------------------------------
# summary FILE COLUMN-EXPRESSION: "median min max" over rounds of an awk expression of the
# columns ($2 msg/s, $3 server CPU s, $4 messages).
summary() {
    awk -F'\t' "{print $2}" "$1" | sort -g | awk '
        { v[NR] = $1 }
        END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
              print m, v[1], v[NR] }'
}
for size in "${size_list[@]}"; do
    echo
    echo "payload $size bytes: medians over $rounds round(s), $connections connections, ${duration}s each:"
    echo
    printf '| %-14s | %10s | %12s | %19s |\n' server "messages/s" "server CPU s" "messages / CPU-s"
    printf '|%s|%s|%s|%s|\n' "----------------" "-----------:" "-------------:" "--------------------:"
    for name in "${names[@]}"; do
        read -r mps _ _ <<<"$(summary "$work/$name.$size.tsv" '$2')"
        read -r cpu _ _ <<<"$(summary "$work/$name.$size.tsv" '$3')"
        read -r eff _ _ <<<"$(summary "$work/$name.$size.tsv" '($3 > 0 ? $4 / $3 : 0)')"
        awk -v n="$name" -v m="$mps" -v c="$cpu" -v e="$eff" \
            'BEGIN {printf "| %-14s | %10.0f | %12.2f | %19.0f |\n", n, m, c, e}'
    done
    echo
    for spec in "2 messages/s          tether/fastwebsockets" "3 messages/s          tether/tungstenite" \
        "4 messages/server-CPU-s tether/fastwebsockets" "5 messages/server-CPU-s tether/tungstenite"; do
        read -r col what pair <<<"$spec"
        read -r med lo hi <<<"$(summary "$work/ratios.$size.tsv" "\$$col")"
        awk -v w="$what" -v p="$pair" -v m="$med" -v l="$lo" -v h="$hi" \
            'BEGIN {printf "   %-23s %-22s median %.2fx  range %.2fx to %.2fx\n", w, p, m, l, h}'
    done
done
if [ -s "$work/errors" ]; then
    echo
    echo "ws_load reported errors:"
    cat "$work/errors"
    exit 1
fi
echo
echo "ws_load reported no errors (every echo a binary frame of the size sent)."
