/**
 * The agent loads parts of itself on first use — detectors and their grammars at the first sink of their kind,
 * `inspect` at the first sink call — often inside a request, from inside a hook. Node's module loader then calls
 * the very builtins the agent hooks (`fs.realpathSync`, `fs.readFileSync`): those calls are the agent's own, not
 * the app's, so they are not judged. A counter, not a flag: loads can nest.
 */
let depth = 0;

export function whileAgentLoads<T>(load: () => T): T {
  depth++;
  try {
    return load();
  } finally {
    depth--;
  }
}

/** `work(arg, more)` as the agent's own work, without a closure per call (the sink hot path). */
export function asAgent<A, T, B = undefined>(work: (arg: A, more?: B) => T, arg: A, more?: B): T {
  depth++;
  try {
    return work(arg, more);
  } finally {
    depth--;
  }
}

export function agentIsLoading(): boolean {
  return depth > 0;
}
