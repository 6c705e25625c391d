import { defineHook, announceFramework, type FrameworkLine, type ModuleHook } from '../src/hook-kit.js';

/**
 * RECOGNITION, not a patch: a framework's request input is gathered from node:http (hooks/http-server.ts), so
 * loading one changes nothing; the agent only says, once per copy, which framework it saw and what of its input
 * is covered — the start-up line `stepguard doctor` also prints.
 */
export function frameworkHook(line: FrameworkLine): ModuleHook {
  return defineHook({
    module: line.package,
    patch(exports, info) {
      announceFramework(line, info.version);
      return exports;
    },
  });
}
