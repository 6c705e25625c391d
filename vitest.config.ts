import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Answers the agent's lazy `require('./x.js')` with the TypeScript module Vitest loaded (see the file).
    setupFiles: ['test/helpers/lazy-requires.ts'],
    // e2e and hook tests share the loopback databases; one file at a time keeps them independent.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
