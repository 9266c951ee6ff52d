// Client benchmark in Node: keep-alive GETs with the body read, `concurrency` at once, for
// `seconds`, against `url`, with tether's package, undici (llhttp in WebAssembly) and Node's
// fetch, alternating the order each round. Prints one JSON line per run: requests/s and
// requests per second of this process's CPU.
//   node wasm/bench/client.mjs URL SECONDS CONCURRENCY ROUNDS PACKAGE_ENTRY UNDICI_PATH
import { createRequire } from 'node:module';

const [url, seconds = '3', concurrency = '1', rounds = '3', entry, undiciPath] = process.argv.slice(2);
const { Client } = await import(entry);
const { Pool } = createRequire(import.meta.url)(undiciPath);

async function measure(name, once) {
  for (let i = 0; i < 200; i++) await once(); // warm-up
  const stop = performance.now() + Number(seconds) * 1000;
  const cpu = process.cpuUsage();
  const started = performance.now();
  let done = 0;
  await Promise.all(
    Array.from({ length: Number(concurrency) }, async () => {
      while (performance.now() < stop) {
        await once();
        done += 1;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const cpuSeconds = (used.user + used.system) / 1e6;
  return { name, concurrency: Number(concurrency), rps: done / elapsed, perCpu: done / cpuSeconds };
}

const tether = new Client({ limitPerHost: Number(concurrency) });
const pool = new Pool(url, { connections: Number(concurrency), pipelining: 1 });
const contenders = {
  tether: async () => {
    const response = await tether.get(url);
    await response.bytes();
  },
  undici: async () => {
    const { body } = await pool.request({ path: '/', method: 'GET' });
    await body.arrayBuffer();
  },
  fetch: async () => {
    const response = await fetch(url);
    await response.arrayBuffer();
  },
};
const names = Object.keys(contenders);
for (let round = 0; round < Number(rounds); round++) {
  const order = round % 2 === 0 ? names : [...names].reverse();
  for (const name of order) console.log(JSON.stringify({ round, ...(await measure(name, contenders[name])) }));
}
await tether.close();
await pool.close();
