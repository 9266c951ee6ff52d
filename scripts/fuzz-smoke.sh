#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each for FUZZ_SECONDS (default 20) seconds.
# Exits non-zero if the build fails or any target finds a crash, a hang (-timeout) or a leak.
#
#   FUZZ_SECONDS=60 ./scripts/fuzz-smoke.sh
#   FUZZ_SANITIZER=none ./scripts/fuzz-smoke.sh    # ~8x faster, no AddressSanitizer
#   ./scripts/fuzz-smoke.sh --targets h1_server,app_template
#   ./scripts/fuzz-smoke.sh --minimize [--targets a,b]
#
# New corpus entries go to fuzz/corpus/TARGET, crashes to fuzz/artifacts/TARGET (both
# gitignored). Read-only inputs: the committed minimized corpus fuzz/corpora/TARGET, the seeds
# fuzz/seeds/TARGET and the dictionaries (fuzz/http.dict for the h1 targets and app_template,
# fuzz/ws.dict for the WebSocket ones, none for pool_ops and request_timer).
#
# --minimize runs no fuzzer: for each target it merges fuzz/corpus/TARGET, fuzz/corpora/TARGET
# and the seeds, minimizes the lot with `cargo fuzz cmin` and writes the result back to
# fuzz/corpora/TARGET (inputs equal to a seed, and inputs over CORPUS_MAX_BYTES, default
# 65536, are left out). Commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
TARGETS=(h1_server h1_client h1_chunked h1_structured h1_differential ws_frames ws_conn ws_extensions ws_handshake ws_structured ws_differential pool_ops proxy_connect proxy_socks5 auth_challenge request_timer app_template)
CORPUS_MAX_BYTES="${CORPUS_MAX_BYTES:-65536}"
SANITIZER_ARGS=()
if [[ -n ${FUZZ_SANITIZER:-} ]]; then
    SANITIZER_ARGS=(--sanitizer "$FUZZ_SANITIZER")
fi

minimize=
while (($#)); do
    case $1 in
    --minimize) minimize=1 ;;
    --targets)
        IFS=, read -r -a TARGETS <<<"${2:?--targets needs a list}"
        shift
        ;;
    --targets=*) IFS=, read -r -a TARGETS <<<"${1#--targets=}" ;;
    *)
        echo "usage: $0 [--minimize] [--targets a,b,...]" >&2
        exit 2
        ;;
    esac
    shift
done

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked || cargo install cargo-fuzz
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz-smoke: the rustup nightly toolchain is needed (cargo +nightly)" >&2
    exit 1
fi

# Bytes held by the files of a directory (not the disk blocks they take).
bytes_in() { find "$@" -type f -printf '%s\n' 2>/dev/null | awk '{ n += $1 } END { print n + 0 }'; }

# Refreshes fuzz/corpora/$1 from everything known for the target.
minimize_target() {
    local target=$1 staging=fuzz/target/cmin/$1 dir file
    rm -rf "$staging"
    mkdir -p "$staging"
    for dir in "fuzz/corpus/$target" "fuzz/corpora/$target" "fuzz/seeds/$target"; do
        [[ -d $dir ]] || continue
        find "$dir" -maxdepth 1 -type f -size -"$((CORPUS_MAX_BYTES + 1))"c \
            -exec cp -t "$staging" {} +
    done
    local before
    before=$(find "$staging" -type f | wc -l)
    if ((before == 0)); then
        echo "fuzz-smoke: $target: no inputs, nothing to minimize" >&2
        rm -rf "$staging"
        return
    fi
    local log=fuzz/target/cmin/$target.log
    if ! cargo +nightly fuzz cmin "${SANITIZER_ARGS[@]}" "$target" "$staging" >"$log" 2>&1 ||
        grep -q 'Failed to minimize corpus' "$log"; then
        tail -20 "$log" >&2
        echo "fuzz-smoke: $target: cmin failed (log in $log)" >&2
        return 1
    fi
    # libFuzzer names merged inputs by the SHA-1 of their content: drop the seeds' copies.
    if [[ -d fuzz/seeds/$target ]]; then
        for file in "fuzz/seeds/$target"/*; do
            [[ -f $file ]] || continue # an empty seeds directory
            rm -f "$staging/$(sha1sum <"$file" | cut -d' ' -f1)"
        done
    fi
    rm -rf "fuzz/corpora/$target"
    if [[ -n $(find "$staging" -type f -print -quit) ]]; then
        mkdir -p fuzz/corpora
        mv "$staging" "fuzz/corpora/$target"
    else
        rm -rf "$staging"
    fi
    echo "fuzz-smoke: $target: $before inputs -> $(find "fuzz/corpora/$target" -type f 2>/dev/null | wc -l)" \
        "($(bytes_in "fuzz/corpora/$target") bytes)" >&2
}

if [[ -n $minimize ]]; then
    failed=()
    for target in "${TARGETS[@]}"; do
        minimize_target "$target" || failed+=("$target")
    done
    echo "fuzz-smoke: fuzz/corpora holds $(bytes_in fuzz/corpora) bytes" \
        "in $(find fuzz/corpora -type f | wc -l) files" >&2
    if ((${#failed[@]})); then
        echo "fuzz-smoke: minimizing FAILED: ${failed[*]}" >&2
        exit 1
    fi
    exit 0
fi

cargo +nightly fuzz build "${SANITIZER_ARGS[@]}"

failed=()
for target in "${TARGETS[@]}"; do
    echo "fuzz-smoke: $target for ${FUZZ_SECONDS}s" >&2
    mkdir -p "fuzz/corpus/$target"
    dict_args=(-dict=fuzz/http.dict)
    if [[ $target == ws_* ]]; then
        dict_args=(-dict=fuzz/ws.dict)
    elif [[ $target == pool_* || $target == request_timer ]]; then
        dict_args=()
    fi
    # The first directory takes new inputs; the others are only read.
    inputs=()
    for dir in "fuzz/corpora/$target" "fuzz/seeds/$target"; do
        if [[ -d $dir ]]; then
            inputs+=("$dir")
        fi
    done
    if ! cargo +nightly fuzz run "${SANITIZER_ARGS[@]}" "$target" \
        "fuzz/corpus/$target" "${inputs[@]}" -- \
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
