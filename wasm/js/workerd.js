// workerd's entry: workerd cannot compile WebAssembly at run time, so the module is
// imported (the Worker's config lists the .wasm as a module); sockets are `connect()`.
import module from './tether_wasm_bg.wasm';
import { configure } from './lib/index.js';
import * as net from './lib/transports/workerd.js';

configure(module, net);

export * from './lib/index.js';
