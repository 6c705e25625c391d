/**
 * The agent's log lines during each test of a file: `process.stderr.write` is replaced before each test and put
 * back after it. Read the lines through the returned function (a new array per test).
 */
import { afterEach, beforeEach } from 'vitest';

export function captureStderr(): () => string[] {
  let lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  beforeEach(() => {
    lines = [];
    process.stderr.write = ((chunk: string) => {
      lines.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
  });
  afterEach(() => {
    process.stderr.write = write;
  });
  return () => lines;
}
