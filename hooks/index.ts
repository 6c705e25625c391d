import type { ModuleHook } from '../src/hook-kit.js';
import { httpServer, httpsServer } from './http-server.js';
import { pg } from './pg.js';
import { mysql2 } from './mysql2.js';
import { mysqlConnection, mysqlPool } from './mysql.js';
import { postgres } from './postgres.js';
import { childProcess } from './child-process.js';
import { fs, fsPromises } from './fs.js';
import { functionConstructor } from './function.js';
import { vm } from './vm.js';
import { httpClient, httpsClient } from './http-client.js';
import { netConnect } from './net.js';
import { globalFetch, undici } from './fetch.js';

/** THE REGISTRY: one line per hook. */
export const HOOKS: readonly ModuleHook[] = [
  httpServer,
  httpsServer,
  pg,
  mysql2,
  mysqlConnection, mysqlPool, postgres,
  childProcess,
  fs, fsPromises,
  functionConstructor,
  vm,
  httpClient, httpsClient, netConnect, globalFetch, undici,
];
