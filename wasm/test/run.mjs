// Runs the package's tests under Deno or Bun (Node uses `node --test`):
//   deno run -A wasm/test/run.mjs [filter]     bun wasm/test/run.mjs [filter]
import { runRegistered } from './harness.mjs';

const dir = new URL('./', import.meta.url);
const files = ['client.test.mjs', 'server.test.mjs', 'websocket.test.mjs', 'panic.test.mjs', 'vectors.test.mjs'];
for (const file of files) {
  try {
    await import(new URL(file, dir).href);
  } catch (error) {
    if (error?.code === 'ERR_MODULE_NOT_FOUND' || /not found|Cannot find module/i.test(String(error))) continue;
    throw error;
  }
}
const args = globalThis.Deno ? Deno.args : process.argv.slice(2);
const { passed, failed } = await runRegistered(args[0]);
console.log(`# ${passed} passed, ${failed} failed`);
const exit = globalThis.Deno ? Deno.exit : process.exit;
exit(failed === 0 && passed > 0 ? 0 : 1);
