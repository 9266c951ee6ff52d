// Bun's entry: the module is compiled from the package's .wasm file; sockets are Bun's own
// (`Bun.connect`, `Bun.listen`).
import { readFileSync } from 'node:fs';
import { configure } from './lib/index.js';
import * as net from './lib/transports/bun.js';

configure(new WebAssembly.Module(readFileSync(new URL('./tether_wasm_bg.wasm', import.meta.url))), net);

export * from './lib/index.js';
