// Node's entry: the module is compiled from the package's .wasm file; sockets are node:net
// and node:tls.
import { readFileSync } from 'node:fs';
import { configure } from './lib/index.js';
import * as net from './lib/transports/node.js';

configure(new WebAssembly.Module(readFileSync(new URL('./tether_wasm_bg.wasm', import.meta.url))), net);

export * from './lib/index.js';
