import { KEY, subjectTag, type FlagRecord, type RiskStore } from './store.js';
import { parseFlag } from './flag-record.js';

/** Reading and clearing flags and vulnerable routes: shared by the API (in-process) and the CLI (Redis). */
export async function showFlag(store: RiskStore, user: string): Promise<FlagRecord | undefined> {
  const [[raw]] = (await store.run([{ subject: subjectTag('u', user), ops: [['get', KEY.flag]] }])) as [[string]];
  return parseFlag(raw);
}

export async function clearFlag(store: RiskStore, user: string): Promise<boolean> {
  const [[n]] = (await store.run([{ subject: subjectTag('u', user), ops: [['del', KEY.flag]] }])) as [[number]];
  return Number(n) > 0;
}

/** Marks a route's vulnerability findings resolved: the `vulnerable_route` signal stops firing until one recurs. */
export async function resolveRoute(store: RiskStore, path: string): Promise<boolean> {
  const [[n]] = (await store.run([{ subject: subjectTag('r', path), ops: [['del', KEY.vulnerabilities]] }])) as [[number]];
  return Number(n) > 0;
}
