# Shell helpers shared by the load benchmarks (scripts/bench-server.sh, scripts/bench-ws.sh),
# sourced by them. `cores_busy` reads the caller's $server_core and $client_core.

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

# Whether nothing listens on 127.0.0.1:PORT.
port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
