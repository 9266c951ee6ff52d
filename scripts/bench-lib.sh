# Shell helpers shared by the load benchmarks (scripts/bench-server.sh, scripts/bench-ws.sh,
# scripts/bench-client.sh), sourced by them. `cores_busy` reads the caller's $server_core and $client_core.

# Clock ticks (utime + stime, all threads) of a process. Fields after the `(comm)`.
cpu_ticks() {
    local stat
    stat="$(cat "/proc/$1/stat")"
    stat="${stat##*) }"
    # shellcheck disable=SC2086
    set -- $stat
    # $1 is field 3 (state); utime and stime are fields 14 and 15.
    echo $(( ${12} + ${13} ))
}

# Busy clock ticks (everything but idle and iowait) of the server's and the client's cores.
cores_busy() {
    awk -v a="cpu$server_core" -v b="cpu$client_core" \
        '$1 == a || $1 == b {for (i = 2; i <= NF; i++) if (i != 5 && i != 6) busy += $i}
         END {print busy}' /proc/stat
}

# scratch_dir: sets $work to a new temporary directory and $server_pid to none, with an
# EXIT trap that stops the server in $server_pid (if any) and removes $work.
scratch_dir() {
    work="$(mktemp -d)"
    server_pid=""
    trap stop_server_and_scratch EXIT
}
stop_server_and_scratch() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}

# Whether nothing listens on 127.0.0.1:PORT.
port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_until TRIES PAUSE PID WHAT LOG CMD...: runs CMD (output discarded) until it succeeds,
# pausing PAUSE seconds between tries. If it never does within TRIES tries, or process PID
# exits meanwhile, prints WHAT and the file LOG to stderr and exits 1.
wait_until() {
    local tries="$1" pause="$2" pid="$3" what="$4" log="$5" n=0
    shift 5
    until "$@" >/dev/null 2>&1; do
        n=$((n + 1))
        if [ "$n" -ge "$tries" ] || ! kill -0 "$pid" 2>/dev/null; then
            echo "$what" >&2
            cat "$log" >&2
            exit 1
        fi
        sleep "$pause"
    done
}

# need_valgrind: installs valgrind (callgrind) from Debian if it is missing.
need_valgrind() {
    command -v callgrind_control >/dev/null 2>&1 && return 0
    echo "== installing valgrind (Debian)"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get install -y -qq valgrind >/dev/null \
        || { $sudo apt-get update -qq && $sudo apt-get install -y -qq valgrind >/dev/null; }
}

# callgrind_start NAME OUT BIN PORT READY-CMD...: starts server BIN (one tokio worker) on
# 127.0.0.1:PORT under callgrind, output in OUT.* and its log in OUT.log; sets server_pid;
# waits until READY-CMD succeeds, then zeroes the counters, so that the next dump covers only
# what follows.
callgrind_start() {
    local name="$1" out="$2" bin="$3" port="$4"
    shift 4
    port_free "$port" || { echo "port $port is already in use" >&2; exit 1; }
    RUST_LOG=warn TOKIO_WORKER_THREADS=1 valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$bin" --addr "127.0.0.1:$port" >"$out.log" 2>&1 &
    server_pid=$!
    wait_until 300 0.2 "$server_pid" "$name did not answer under valgrind:" "$out.log" "$@"
    callgrind_control --zero "$server_pid" >/dev/null 2>&1
}

# callgrind_counts OUT: "instructions allocations" of the counting window: the largest dump
# among OUT.* (the one taken with `callgrind_control --dump` after `--zero`). Allocations are
# the calls to malloc, calloc and realloc (the callers' call counts, summed).
callgrind_counts() {
    local out="$1" dump
    dump="$(for f in "$out".[0-9]*; do
        echo "$(awk '/^(summary|totals):/ {print $2; exit}' "$f") $f"
    done | sort -n | tail -1 | cut -d' ' -f2)"
    [ -n "$dump" ] || return 1
    local instructions allocations
    instructions="$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")"
    # In the caller tree, each function's block lists its callers ("< ... (Nx)") above the
    # function's own line ("* ...:malloc [...]").
    allocations="$(callgrind_annotate --tree=caller --threshold=100 "$dump" 2>/dev/null | awk '
        /^ *$/ { calls = 0; next }
        /  < / { if (match($0, /\(([0-9,]+)x\)/)) { n = substr($0, RSTART + 1, RLENGTH - 3); gsub(",", "", n); calls += n } next }
        /  \* .*:(malloc|calloc|realloc) \[/ { total += calls }
        { calls = 0 }
        END { print total + 0 }')"
    echo "$instructions $allocations"
}
