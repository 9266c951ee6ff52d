// One way to write the package's tests for every JS runtime: `test(name, fn)`. Under
// `node --test` the tests are node:test's; under Deno and Bun, `run.mjs` imports the test
// files and runs what they registered, in order, and exits non-zero on a failure.

const registered = [];
const underNodeTest = !globalThis.Deno && !globalThis.Bun && process.env.NODE_TEST_CONTEXT !== undefined;
let nodeTest = null;
if (underNodeTest) nodeTest = (await import('node:test')).test;

/** Registers a test; `fn` may be async. `options.timeout` in ms (default 30 s). */
export function test(name, fn, options = {}) {
  if (nodeTest) return nodeTest(name, { timeout: options.timeout ?? 30_000 }, fn);
  registered.push({ name, fn, timeout: options.timeout ?? 30_000 });
}

/** Runs what was registered (Deno, Bun): `{ passed, failed }`. */
export async function runRegistered(filter) {
  let passed = 0;
  let failed = 0;
  for (const { name, fn, timeout } of registered) {
    if (filter && !name.includes(filter)) continue;
    let timer;
    const started = performance.now();
    try {
      await Promise.race([
        fn(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${timeout} ms`)), timeout);
        }),
      ]);
      passed += 1;
      console.log(`ok - ${name} (${Math.round(performance.now() - started)} ms)`);
    } catch (error) {
      failed += 1;
      console.log(`not ok - ${name}\n  ${String(error?.stack ?? error).replaceAll('\n', '\n  ')}`);
    } finally {
      clearTimeout(timer);
    }
  }
  return { passed, failed };
}

/** The package under test, loaded through the runtime's own entry. */
export async function loadPackage() {
  const base = new URL('../../target/wasm-test-pkg/', import.meta.url);
  const entry = globalThis.Deno ? 'deno.js' : globalThis.Bun ? 'bun.js' : 'node.js';
  return import(new URL(entry, base).href);
}
