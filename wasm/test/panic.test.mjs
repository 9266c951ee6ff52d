// A panic inside the module (triggered on purpose by the test build's `debug_panic`) fails
// the work of that instance with a PanicError; a new instance takes over, and clients and
// servers made before it keep working.
import assert from 'node:assert/strict';
import { test, loadPackage } from './harness.mjs';
import { httpServer, run, sleep } from './peers.mjs';

const tether = await loadPackage();
const { Client, Server, PanicError, getHost } = tether;

test('panic: in-flight work fails with PanicError, then a fresh instance serves', async () => {
  const peer = await httpServer(async (req, res) => {
    if (req.url === '/slow') await sleep(300);
    res.end(`answer ${req.url}`);
  });
  const server = new Server(() => 'served by the module', { onError: () => {} });
  const { port } = await server.listen();
  const client = new Client();
  try {
    assert.equal(await (await client.get(`${peer.url}/before`)).text(), 'answer /before');
    const inFlight = client.get(`${peer.url}/slow`);
    await sleep(50);
    const generation = getHost().generation;
    assert.throws(() => getHost().call((glue) => glue.debug_panic()), PanicError);
    await assert.rejects(inFlight, PanicError);
    assert.equal(getHost().generation, generation + 1);
    // The same client binds itself to the new instance.
    assert.equal(await (await client.get(`${peer.url}/after`)).text(), 'answer /after');
    assert.equal(await (await new Client().get(`${peer.url}/new`)).text(), 'answer /new');
    // The server, too: its next connection starts it in the new instance.
    const curl = await run('curl', ['-sS', `http://127.0.0.1:${port}/`]);
    assert.equal(curl.stdout, 'served by the module');
    const stats = tether.stats();
    assert.equal(stats.pending, 0, JSON.stringify(stats));
  } finally {
    await client.close();
    await server.close();
    await peer.close();
  }
});
