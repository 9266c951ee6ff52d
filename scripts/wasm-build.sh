#!/usr/bin/env bash
# Builds the npm package of tether's WebAssembly module into wasm/pkg: the module
# (tether-wasm, built for wasm32-unknown-unknown with Debian's rustc-web toolchain and
# -Zbuild-std, as scripts/wasm-check.sh explains), the JS glue written by `wasm-bindgen`
# (installed at exactly the crate's version), and the package's own JS from wasm/js.
#
#   scripts/wasm-build.sh           the package, in wasm/pkg
#   scripts/wasm-build.sh --test    the same with the test-only exports (`debug_panic`,
#                                   `Replay`), in target/wasm-test-pkg (what the JS tests load)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

FEATURES=()
OUT=wasm/pkg
if [[ ${1:-} == --test ]]; then
    FEATURES=(--features testing)
    OUT=target/wasm-test-pkg
fi

# ---- tools: Debian's wasm toolchain, and wasm-bindgen at the locked version ----
if [[ ! -x /usr/bin/cargo || ! -x /usr/bin/rustc || ! -d /usr/lib/rustlib/src/rust/library ]] ||
    ! command -v wasm-ld >/dev/null 2>&1; then
    echo "wasm-build: installing Debian's rustc-web, cargo-web, rust-web-src and lld" >&2
    SUDO=()
    [[ $(id -u) -ne 0 ]] && SUDO=(sudo)
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends rustc-web cargo-web rust-web-src lld
fi
VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [[ -z $VERSION ]]; then
    echo "wasm-build: no wasm-bindgen in Cargo.lock" >&2
    exit 1
fi
if [[ $(wasm-bindgen --version 2>/dev/null || true) != "wasm-bindgen $VERSION" ]]; then
    echo "wasm-build: installing wasm-bindgen-cli $VERSION (a few minutes, once)" >&2
    # Not --locked: the CLI's own lock file may name versions the registry mirror lacks.
    cargo install wasm-bindgen-cli --version "=$VERSION"
fi

# ---- the module ----
(
    export CARGO_TARGET_DIR="$ROOT/target/wasm"
    export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
    export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld
    unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
    /usr/bin/cargo build --locked -p tether-wasm --profile wasm --target wasm32-unknown-unknown \
        -Zbuild-std=std,panic_abort "${FEATURES[@]}"
)
WASM=target/wasm/wasm32-unknown-unknown/wasm/tether_wasm.wasm

# ---- the package ----
rm -rf "$OUT"
mkdir -p "$OUT"
# `web`: an ES module whose `initSync({ module })` takes a compiled WebAssembly.Module,
# which every host can give (Node, Deno and Bun compile the file; workerd imports it).
wasm-bindgen --target web --out-dir "$OUT" --out-name tether_wasm "$WASM"
# After a trap (a panic aborts), the host makes a fresh instance of the same module; the
# glue keeps its instance in a module variable, so it gets a way to forget it.
cat >>"$OUT/tether_wasm.js" <<'JS'

// Added by tether's scripts/wasm-build.sh: forget the current instance (it trapped), so
// that the next `initSync` instantiates the module afresh.
export function __tether_forget() {
    wasm = undefined;
    wasmInstance = undefined;
}
JS
cp -R wasm/js/. "$OUT"/
RAW=$(stat -c %s "$OUT/tether_wasm_bg.wasm")
GZ=$(gzip -9 -c "$OUT/tether_wasm_bg.wasm" | wc -c)
echo "wasm-build: $OUT/tether_wasm_bg.wasm: $RAW bytes, $GZ gzipped" >&2
