// The shared byte-level test vectors (wasm/test/vectors/*.json, written from native runs by
// `wasm/tests/vectors.rs`), replayed through the package's WebAssembly module: every event,
// output byte, deadline and state must be what the native core produced.
//
// Each scenario runs twice: step by step through the Replay methods (bytes cross the
// boundary as Uint8Arrays, as a host's would), and whole steps through `step`, the same
// Rust function the native generator runs.
import { readdirSync, readFileSync } from 'node:fs';
import { deepStrictEqual } from 'node:assert';
import { test, loadPackage } from './harness.mjs';

const dir = new URL('./vectors/', import.meta.url);
const files = readdirSync(dir)
  .filter((name) => name.endsWith('.json'))
  .sort();
if (files.length === 0) throw new Error(`no vectors in ${dir.pathname}`);

const encoder = new TextEncoder();

/** The bytes a vector's BYTES value stands for: a string (UTF-8) or `{ hex }`. */
function bytesOf(value) {
  if (typeof value === 'string') return encoder.encode(value);
  const hex = value?.hex;
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || /[^0-9a-f]/i.test(hex)) {
    throw new Error(`not bytes: ${JSON.stringify(value)}`);
  }
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i += 1) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

function hexOf(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function sameBytes(a, b) {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** Replays one scenario through the Replay methods; throws at the first difference. */
function replayStepwise(Replay, scenario) {
  const replay = new Replay(scenario.role, scenario.config);
  try {
    scenario.steps.forEach((step, i) => {
      const where = `step ${i} (${JSON.stringify({ ...step, expect: undefined })})`;
      if ('input' in step) replay.input(step.at, bytesOf(step.input));
      else if ('eof' in step) replay.eof();
      else if ('timeout' in step) replay.timeout(step.at);
      else if ('action' in step) replay.action(step.at, step.action);
      else throw new Error(`${where}: unknown step`);
      const events = replay.events(step.poll);
      const output = replay.transmit(step.at);
      const deadline = replay.nextTimeout();
      const state = replay.state();
      const { expect } = step;
      deepStrictEqual(events, expect.events, `${where}: events`);
      const want = bytesOf(expect.output);
      if (!(output instanceof Uint8Array) || !sameBytes(output, want)) {
        throw new Error(`${where}: output\n  got:  ${hexOf(output)}\n  want: ${hexOf(want)}`);
      }
      deepStrictEqual(deadline, expect.deadline, `${where}: deadline`);
      deepStrictEqual(state, expect.state, `${where}: state`);
    });
  } finally {
    replay.free();
  }
}

/** Replays one scenario through `step`, the native generator's function. */
function replayWhole(Replay, scenario) {
  const replay = new Replay(scenario.role, scenario.config);
  try {
    scenario.steps.forEach((step, i) => {
      const { expect, ...spec } = step;
      deepStrictEqual(replay.step(spec), expect, `step ${i} (${JSON.stringify(spec)})`);
    });
  } finally {
    replay.free();
  }
}

let total = 0;
for (const file of files) {
  const group = JSON.parse(readFileSync(new URL(file, dir), 'utf8'));
  for (const scenario of group.scenarios) {
    total += 1;
    test(`vectors ${group.group}: ${scenario.name}`, async () => {
      const { Replay } = await loadPackage();
      replayStepwise(Replay, scenario);
      replayWhole(Replay, scenario);
    });
  }
}

test('vectors: the replay refuses what it does not know', async () => {
  const { Replay } = await loadPackage();
  let thrown = null;
  try {
    new Replay('h2-server', {});
  } catch (error) {
    thrown = error;
  }
  if (!(thrown instanceof Error) || !/unknown role/.test(thrown.message)) {
    throw new Error(`expected an unknown role error, got ${thrown}`);
  }
  const replay = new Replay('ws-server', { websocket: { maxFrameSize: 10 } });
  try {
    replay.action(0, { type: 'text', text: 'x', extra: 1 });
    throw new Error('an unknown field was accepted');
  } catch (error) {
    if (!/unknown field/.test(String(error?.message))) throw error;
  }
  replay.action(0, { type: 'text', text: 'x' });
  deepStrictEqual(Array.from(replay.transmit(0)), [0x81, 0x01, 0x78]);
  replay.free();
  if (total < 1) throw new Error('no scenarios');
});
