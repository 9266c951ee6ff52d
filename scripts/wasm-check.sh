#!/usr/bin/env bash
# Builds tether-core and tether-rt for wasm32-unknown-unknown (a WebAssembly host runs them
# with JavaScript providing sockets and timers, so nothing in them may need threads, an OS
# clock or OS randomness). rustup on the CI machines has no wasm32 standard library and
# cannot download one, so the build uses Debian's rustc (rustc-web, cargo-web) and compiles
# std from source (rust-web-src) with -Zbuild-std. RUSTC_BOOTSTRAP=1 unlocks -Z flags on
# that stable rustc.
#
# Artifacts go to target/wasm (CARGO_TARGET_DIR), never to the rustup toolchain's target/.
# Run from anywhere: ./scripts/wasm-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=wasm32-unknown-unknown
DEBIAN_CARGO=/usr/bin/cargo
DEBIAN_RUSTC=/usr/bin/rustc

# ---- Debian toolchain (installed only when something is missing) ----
if [[ ! -x $DEBIAN_CARGO || ! -x $DEBIAN_RUSTC || ! -d /usr/lib/rustlib/src/rust/library ]] ||
    ! command -v wasm-ld >/dev/null 2>&1; then
    echo "wasm-check: installing Debian's rustc-web, cargo-web, rust-web-src and lld" >&2
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then
        SUDO=(sudo)
    fi
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends rustc-web cargo-web rust-web-src lld
fi

echo "wasm-check: $("$DEBIAN_RUSTC" --version), $("$DEBIAN_CARGO" --version)" >&2

# ---- build ----
# Debian's cargo is called by its full path because rustup's stays first on PATH; RUSTC
# makes sure no rustup proxy compiles anything. --locked: never rewrite Cargo.lock.
export CARGO_TARGET_DIR="$PWD/target/wasm"
export RUSTC="$DEBIAN_RUSTC"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld
# Flags meant for the host toolchain (e.g. sanitizers) must not leak into this build.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_TARGET RUSTUP_TOOLCHAIN || true

"$DEBIAN_CARGO" build --locked --release -p tether-core -p tether-rt \
    --target "$TARGET" -Zbuild-std=std,panic_abort

for crate in tether_core tether_rt; do
    RLIB="$CARGO_TARGET_DIR/$TARGET/release/lib$crate.rlib"
    if [[ ! -s $RLIB ]]; then
        echo "wasm-check: FAILED: $RLIB was not produced" >&2
        exit 1
    fi
    echo "wasm-check: OK: $RLIB ($(stat -c %s "$RLIB") bytes)" >&2
done
