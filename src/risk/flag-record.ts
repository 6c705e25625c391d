import type { FlagRecord } from './store.js';

/** A stored flag record, or undefined when absent or unreadable. */
export function parseFlag(raw: string | null | undefined): FlagRecord | undefined {
  if (!raw) return undefined;
  try {
    const v = JSON.parse(raw) as Partial<FlagRecord>;
    if (typeof v.user !== 'string' || typeof v.rule !== 'string' || typeof v.at !== 'number') return undefined;
    return { user: v.user, reason: String(v.reason ?? ''), rule: v.rule, at: v.at, signals: Array.isArray(v.signals) ? v.signals.map(String) : [] };
  } catch {
    return undefined;
  }
}
