/** Payload corpora: `test/fixtures/payloads/<detector>.{attack,benign}.jsonl`, one JSON object per line. */
import { readFileSync } from 'node:fs';

export function readCorpus<T>(file: string): T[] {
  return readFileSync(new URL(`../fixtures/payloads/${file}`, import.meta.url), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as T);
}
