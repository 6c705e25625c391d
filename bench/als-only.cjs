'use strict';
// Diagnostic preload for `node bench/run.mjs --variants none,als,block`: no agent, only what every
// request-context agent does at least — each request runs inside AsyncLocalStorage.run(), and the context is read
// (getStore) once, where the response ends — so its cost can be told apart from the agent's own work.
// The read matters on Node 20: ALS turns on promise hooks for every promise in the process, and the first
// getStore() makes Node hand the current resource to JS on every callback from then on (async_hooks'
// kUsesExecutionAsyncResource): +6k instructions per /hello request (bench/instructions.mjs). A floor without it
// (run() only, as before December 2026) is one no agent can reach.
const { AsyncLocalStorage } = require('node:async_hooks');
const http = require('node:http');

const storage = new AsyncLocalStorage();
const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, req, res) {
  if (event !== 'request') return emit.apply(this, arguments);
  const args = arguments;
  return storage.run({ req, res }, () => emit.apply(this, args));
};
const end = http.ServerResponse.prototype.end;
let reads = 0; // kept, so the read is not dead code
http.ServerResponse.prototype.end = function () {
  if (storage.getStore() !== undefined) reads++;
  return end.apply(this, arguments);
};
