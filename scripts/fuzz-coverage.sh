#!/usr/bin/env bash
# Line and branch coverage of tether-core (core/src) reached by the fuzz corpora: a local
# tool, too slow for CI.
#
#   ./scripts/fuzz-coverage.sh                          # every target of fuzz-smoke.sh
#   ./scripts/fuzz-coverage.sh --targets h1_server,h1_chunked
#   ./scripts/fuzz-coverage.sh --report-only            # reuse fuzz/coverage/*/coverage.profdata
#
# For each target it runs `cargo fuzz coverage` over fuzz/corpus/TARGET, fuzz/corpora/TARGET
# and fuzz/seeds/TARGET (an instrumented build, no sanitizer, in
# fuzz/target/TRIPLE/coverage; the profile goes to fuzz/coverage/TARGET/coverage.profdata),
# then merges the profiles of all targets into one report restricted to core/src:
#
#   target/fuzz-coverage/summary.txt   per-file table, then per-module table (also printed)
#   target/fuzz-coverage/html/         llvm-cov's HTML report, with branch counts
#   target/fuzz-coverage/export.json   llvm-cov's JSON summary
#
# llvm-cov warns that some functions "have mismatched data": generic functions instantiated
# differently in different target binaries; their counts come from one of the binaries only.
#
# Needs llvm-profdata and llvm-cov of the nightly's LLVM major version: Debian's llvm-NN
# package, installed here when missing (through sudo when not root). COVERAGE_JOBS (default
# 1) is how many processes run the corpus of a target.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The target list is the one the smoke script runs.
targets_line=$(sed -n 's/^TARGETS=(\(.*\))$/\1/p' scripts/fuzz-smoke.sh)
read -r -a TARGETS <<<"$targets_line"
report_only=
while (($#)); do
    case $1 in
    --targets)
        IFS=, read -r -a TARGETS <<<"${2:?--targets needs a list}"
        shift
        ;;
    --targets=*) IFS=, read -r -a TARGETS <<<"${1#--targets=}" ;;
    --report-only) report_only=1 ;;
    *)
        echo "usage: $0 [--targets a,b,...] [--report-only]" >&2
        exit 2
        ;;
    esac
    shift
done
if ((${#TARGETS[@]} == 0)); then
    echo "fuzz-coverage: no targets (TARGETS=(...) not found in scripts/fuzz-smoke.sh?)" >&2
    exit 1
fi

rustc_info=$(rustc +nightly -vV)
triple=$(sed -n 's/^host: //p' <<<"$rustc_info")
llvm_major=$(sed -n 's/^LLVM version: \([0-9]*\).*/\1/p' <<<"$rustc_info")
profdata=llvm-profdata-$llvm_major
llvm_cov=llvm-cov-$llvm_major
if ! command -v "$profdata" >/dev/null || ! command -v "$llvm_cov" >/dev/null; then
    echo "fuzz-coverage: installing llvm-$llvm_major (llvm-profdata, llvm-cov)" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "llvm-$llvm_major"
fi
llvm_bin=$(dirname "$(readlink -f "$(command -v "$profdata")")")

out=target/fuzz-coverage
bin_dir=fuzz/target/$triple/coverage/$triple/release
mkdir -p "$out"

profiles=()
objects=()
for target in "${TARGETS[@]}"; do
    dirs=()
    for dir in "corpus/$target" "corpora/$target" "seeds/$target"; do
        if [[ -n $(find "fuzz/$dir" -maxdepth 1 -type f -print -quit 2>/dev/null) ]]; then
            dirs+=("$dir")
        fi
    done
    if [[ -z $report_only ]]; then
        if ((${#dirs[@]} == 0)); then
            echo "fuzz-coverage: $target: no inputs (run the fuzzer first); skipped" >&2
            continue
        fi
        echo "fuzz-coverage: $target: ${dirs[*]}" >&2
        rm -rf "fuzz/coverage/$target"
        # Branch regions need -Zcoverage-options=branch; cargo-fuzz appends RUSTFLAGS to its own.
        (cd fuzz && RUSTFLAGS="${RUSTFLAGS:-} -Zcoverage-options=branch" \
            cargo +nightly fuzz coverage --sanitizer none --llvm-path "$llvm_bin" \
            --jobs "${COVERAGE_JOBS:-1}" "$target" "${dirs[@]}" -- -timeout=30)
    fi
    if [[ -f fuzz/coverage/$target/coverage.profdata && -x $bin_dir/$target ]]; then
        profiles+=("fuzz/coverage/$target/coverage.profdata")
        # llvm-cov takes the first binary as an argument, the others with -object.
        if ((${#objects[@]})); then
            objects+=(-object)
        fi
        objects+=("$bin_dir/$target")
    else
        echo "fuzz-coverage: $target: no profile or binary; left out of the report" >&2
    fi
done
if ((${#profiles[@]} == 0)); then
    echo "fuzz-coverage: no coverage profiles" >&2
    exit 1
fi

"$profdata" merge -sparse "${profiles[@]}" -o "$out/merged.profdata"
cov_args=(-instr-profile="$out/merged.profdata" "${objects[@]}" "$root/core/src")
"$llvm_cov" export -format=text -summary-only "${cov_args[@]}" >"$out/export.json"
"$llvm_cov" report -show-branch-summary "${cov_args[@]}" >"$out/report.txt"
rm -rf "$out/html"
"$llvm_cov" show -format=html -show-branches=count -output-dir="$out/html" "${cov_args[@]}"

# Per-file and per-module tables from the JSON summary.
python3 - "$out/export.json" "$root/core/src/" "${TARGETS[*]}" >"$out/summary.txt" <<'PY'
import json, sys

export, prefix, targets = sys.argv[1], sys.argv[2], sys.argv[3]
files = json.load(open(export))["data"][0]["files"]
rows = {}
for f in files:
    name = f["filename"]
    if not name.startswith(prefix):
        continue
    s = f["summary"]
    rows[name[len(prefix):]] = (s["lines"]["covered"], s["lines"]["count"],
                                s["branches"]["covered"], s["branches"]["count"])

def pct(covered, count):
    return f"{100 * covered / count:6.1f}%" if count else "     -"

def table(title, entries):
    print(title)
    print(f"{'':28} {'lines':>15} {'':>7}  {'branches':>13} {'':>7}")
    total = [0, 0, 0, 0]
    for key, (lc, ln, bc, bn) in entries:
        print(f"{key:28} {lc:>7}/{ln:<7} {pct(lc, ln)}  {bc:>6}/{bn:<6} {pct(bc, bn)}")
        total = [t + v for t, v in zip(total, (lc, ln, bc, bn))]
    lc, ln, bc, bn = total
    print(f"{'TOTAL':28} {lc:>7}/{ln:<7} {pct(lc, ln)}  {bc:>6}/{bn:<6} {pct(bc, bn)}")
    print()

def module(path):
    # core/src/<dir>/file.rs -> <dir>; core/src/file.rs -> file
    return path.rsplit("/", 1)[0] if "/" in path else path.removesuffix(".rs")

modules = {}
for path, values in rows.items():
    acc = modules.setdefault(module(path), [0, 0, 0, 0])
    for i, v in enumerate(values):
        acc[i] += v

print(f"tether-core coverage from the fuzz corpora of: {targets}\n")
table("per file (core/src/)", sorted(rows.items()))
table("per module (core/src/<module>/)", sorted(modules.items()))
PY
cat "$out/summary.txt"
echo "fuzz-coverage: $out/summary.txt, $out/report.txt, $out/html/index.html" >&2
