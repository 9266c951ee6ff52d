#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each for FUZZ_SECONDS (default 20) seconds.
# Exits non-zero if the build fails or any target finds a crash, a hang (-timeout) or a leak.
#
#   FUZZ_SECONDS=60 ./scripts/fuzz-smoke.sh
#   FUZZ_SANITIZER=none ./scripts/fuzz-smoke.sh    # ~8x faster, no AddressSanitizer
#
# New corpus entries go to fuzz/corpus/TARGET, crashes to fuzz/artifacts/TARGET (both
# gitignored); fuzz/seeds/TARGET and the dictionaries (fuzz/http.dict for the h1 targets,
# fuzz/ws.dict for the WebSocket ones, none for pool_ops) are read-only inputs.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
TARGETS=(h1_server h1_client h1_chunked h1_structured h1_differential ws_frames ws_conn ws_extensions ws_structured ws_differential pool_ops proxy_connect proxy_socks5 auth_challenge)
SANITIZER_ARGS=()
if [[ -n ${FUZZ_SANITIZER:-} ]]; then
    SANITIZER_ARGS=(--sanitizer "$FUZZ_SANITIZER")
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked || cargo install cargo-fuzz
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz-smoke: the rustup nightly toolchain is needed (cargo +nightly)" >&2
    exit 1
fi

cargo +nightly fuzz build "${SANITIZER_ARGS[@]}"

failed=()
for target in "${TARGETS[@]}"; do
    echo "fuzz-smoke: $target for ${FUZZ_SECONDS}s" >&2
    mkdir -p "fuzz/corpus/$target"
    dict_args=(-dict=fuzz/http.dict)
    if [[ $target == ws_* ]]; then
        dict_args=(-dict=fuzz/ws.dict)
    elif [[ $target == pool_* ]]; then
        dict_args=()
    fi
    seeds=()
    if [[ -d fuzz/seeds/$target ]]; then
        seeds=("fuzz/seeds/$target")
    fi
    if ! cargo +nightly fuzz run "${SANITIZER_ARGS[@]}" "$target" \
        "fuzz/corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$FUZZ_SECONDS" -timeout=10 "${dict_args[@]}" \
        -print_final_stats=1; then
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "fuzz-smoke: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz-smoke: OK: ${TARGETS[*]}, ${FUZZ_SECONDS}s each" >&2
