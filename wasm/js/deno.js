// Deno's entry: the module is compiled from the package's .wasm file; sockets are
// Deno.connect / Deno.connectTls / Deno.listen as Web Streams.
import { configure } from './lib/index.js';
import * as net from './lib/transports/deno.js';

configure(new WebAssembly.Module(Deno.readFileSync(new URL('./tether_wasm_bg.wasm', import.meta.url))), net);

export * from './lib/index.js';
