/**
 * The agent's own logger. Writes one line per message to stderr with a `[stepguard]` prefix.
 * Never called on the hot path except for findings (one line each, configurable) and `warnOnce`.
 */
import { writeSync } from 'node:fs';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

let threshold = ORDER.info;
const warnedKeys = new Set<string>();

export function setLogLevel(level: LogLevel): void {
  threshold = ORDER[level];
}

/**
 * While the preload starts the agent, lines go straight to file descriptor 2: creating `process.stderr` loads
 * Node's stream machinery (about 1.5 MiB), a cost the start-up line alone should not add to an app that never
 * writes to stderr. Writes to stderr are synchronous for files, TTYs and pipes on Linux either way, so lines keep
 * their order; a failed direct write (EAGAIN on a non-blocking pipe, say) goes through the stream instead. After
 * the start every line goes through `process.stderr`, where the app (and tests) expect it.
 */
let direct = false;

export function writeDirectlyWhileStarting(on: boolean): void {
  direct = on;
}

function write(level: LogLevel, message: string): void {
  if (ORDER[level] < threshold) return;
  const line = `[stepguard] ${level === 'info' ? '' : level + ': '}${message}\n`;
  if (direct) {
    try {
      writeSync(2, line);
      return;
    } catch {
      // fall through to the stream
    }
  }
  try {
    process.stderr.write(line);
  } catch {
    // stderr closed: nothing sensible left to do, and the host must not notice.
  }
}

export const log = {
  debug: (m: string) => write('debug', m),
  info: (m: string) => write('info', m),
  warn: (m: string) => write('warn', m),
  error: (m: string) => write('error', m),
};

/** Logs a warning the first time `key` is seen, so a recurring fault costs one line, not a flood. */
export function warnOnce(key: string, message: string): void {
  if (warnedKeys.has(key)) return;
  warnedKeys.add(key);
  write('warn', message);
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
