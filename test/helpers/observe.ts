/** What hook tests observe of a library call, shared by the driver suites. */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { MYSQL_URL } from './services.js';

const require = createRequire(import.meta.url);

export const BLOCKED = 'ERR_STEPGUARD_BLOCKED';
export const BENIGN = 'alice';
export const ATTACK = "' OR '1'='1";
export const ALICE = { id: 1, name: 'alice' };

/** The class name of a return value (what the caller can observe of it). */
export function kindOf(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (value instanceof Promise) return 'Promise';
  return (value as object).constructor?.name ?? typeof value;
}

export function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms))]);
}

let markerSeq = 0;
/** Unique tags for one refused statement and the sentinel statement sent after it. */
export function markers(): { refused: string; sentinel: string } {
  const n = `${process.pid}-${++markerSeq}`;
  return { refused: `sg-refused-${n}`, sentinel: `sg-sentinel-${n}` };
}

export const versionOf = (dir: string): string => (require(join(dir, 'package.json')) as { version: string }).version;

const mysqlUrl = new URL(MYSQL_URL);
export const MYSQL_OPTIONS = {
  host: mysqlUrl.hostname,
  port: Number(mysqlUrl.port),
  user: decodeURIComponent(mysqlUrl.username),
  password: decodeURIComponent(mysqlUrl.password),
  database: mysqlUrl.pathname.slice(1),
};
