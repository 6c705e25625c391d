'use strict';
// Diagnostic preload for `node bench/run.mjs --variants none,als,block`: no agent, only what every
// request-context agent does at least — each request runs inside AsyncLocalStorage.run() — so its cost
// (on Node 20 ALS turns on promise hooks for every promise in the process) can be told apart from the
// agent's own work.
const { AsyncLocalStorage } = require('node:async_hooks');
const http = require('node:http');

const storage = new AsyncLocalStorage();
const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, req, res) {
  if (event !== 'request') return emit.apply(this, arguments);
  const args = arguments;
  return storage.run({ req, res }, () => emit.apply(this, args));
};
