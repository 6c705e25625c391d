import type { Telemetry } from '../telemetry/telemetry.js';
import { ATTR } from '../telemetry/attributes.js';
import { log } from '../log.js';

/**
 * Stale contexts: a sink call whose request context belongs to a request that was already answered. Either
 * the app works on after answering (an audit write after `res.json()`, a client that hung up), or a library
 * queued the work and ran it from another request's context (a promise library's own scheduler, a pool, a
 * stored callback). The agent cannot tell the two apart at the sink, so it judges the call by that request's
 * own input only — never by the verdicts cached for it, which could hand one request's refusal to another
 * request's call — and reports the call site once, naming the library frames, so a propagation gap can be fixed.
 */

export const SPAN_STALE_CONTEXT = 'stepguard.stale_context';
export const ATTR_STALE_FRAMES = 'stepguard.stale.frames';

/** Call sites reported so far (bounded: a process that keeps producing new ones stops adding after this). */
const reported = new Set<string>();
const MAX_REPORTED = 1_000;
const STACK_LIMIT = 40;
const MAX_FRAMES = 12;

/**
 * The frames of a short stack that say where the work came from: `package:function` for code under
 * node_modules, `(app):function` for the app's own code; paths, line numbers and arguments are dropped, so
 * nothing the user sent can appear. The agent's own frames are left out.
 */
export function libraryFrames(stack: string | undefined, ownDir: string): string[] {
  if (!stack) return [];
  const frames: string[] = [];
  for (const raw of stack.split('\n')) {
    const line = raw.trim();
    if (!line.startsWith('at ')) continue;
    const open = line.lastIndexOf(' (');
    const fn = open === -1 ? '' : line.slice(3, open);
    const location = open === -1 ? line.slice(3) : line.slice(open + 2, -1);
    if (location.startsWith(ownDir) || location.startsWith('node:')) continue;
    const pkg = packageOf(location);
    if (pkg === 'stepguard') continue;
    const name = cleanName(fn);
    const frame = `${pkg ?? '(app)'}:${name}`;
    if (frames[frames.length - 1] !== frame) frames.push(frame);
    if (frames.length >= MAX_FRAMES) break;
  }
  return frames;
}

function packageOf(location: string): string | undefined {
  const at = location.lastIndexOf('node_modules/');
  if (at === -1) return undefined;
  const rest = location.slice(at + 'node_modules/'.length).split('/');
  return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1] ?? ''}` : rest[0];
}

/** Function names only, from a fixed alphabet: `async Query.run` → `Query.run`. */
function cleanName(fn: string): string {
  const name = fn.replace(/^(async|new) /, '').replace(/ \[as [^\]]{0,80}\]$/, '');
  const clean = name.replace(/[^A-Za-z0-9_$.<>]/g, '').slice(0, 80);
  return clean || '<anonymous>';
}

export interface StaleCall {
  readonly kind: string;
  readonly op: string;
  readonly method: string | undefined;
  readonly route: string | undefined;
}

/** Reports a stale-context call site the first time it is seen. Returns the frames (for tests). */
export function reportStaleContext(telemetry: Telemetry, call: StaleCall, ownDir: string): readonly string[] | undefined {
  return reportCallSite(telemetry, call, ownDir, undefined);
}

/**
 * Reports, once per call site, a call made in the context of a request still being served that carried an attack in
 * another request's input (src/inspect.ts, ifAnotherRequestsWork): a worker or library ran one request's work in
 * another's context. The same span as a stale call, with `stepguard.stale.carrier` naming the request it was for.
 */
export function reportCrossedContext(telemetry: Telemetry, call: StaleCall, carrier: Pick<StaleCall, 'method' | 'route'>, ownDir: string): readonly string[] | undefined {
  return reportCallSite(telemetry, call, ownDir, carrier);
}

export const ATTR_STALE_CARRIER = 'stepguard.stale.carrier';

function reportCallSite(telemetry: Telemetry, call: StaleCall, ownDir: string, carrier: Pick<StaleCall, 'method' | 'route'> | undefined): readonly string[] | undefined {
  if (reported.size >= MAX_REPORTED) return undefined;
  const previous = Error.stackTraceLimit;
  let stack: string | undefined;
  try {
    Error.stackTraceLimit = STACK_LIMIT;
    stack = new Error().stack;
  } finally {
    Error.stackTraceLimit = previous;
  }
  const frames = libraryFrames(stack, ownDir);
  // A lazy `require` reads module files wherever it happens (the agent's own, right after it refused a request,
  // is one): that is module loading, not work a library handed over, and nothing to fix.
  if (frames[0]?.startsWith('require-in-the-middle:')) return undefined;
  const key = `${carrier ? 'crossed' : 'stale'}\0${call.op}\0${frames.join('\0')}`;
  if (reported.has(key)) return undefined;
  reported.add(key);
  const libraries = [...new Set(frames.map((f) => f.slice(0, f.lastIndexOf(':'))).filter((p) => p !== '(app)'))];
  const where = `${libraries.length > 0 ? ` (libraries on the stack: ${libraries.join(', ')})` : ''}; frames: ${frames.join(' < ') || '(none)'}`;
  const requestOf = (r: Pick<StaleCall, 'method' | 'route'>): string => `${r.method ?? '?'} ${r.route ?? '(no route)'}`;
  log.warn(
    carrier
      ? `${call.op} ran in the context of another request still being served (${requestOf(call)}) and carried an attack in the input ` +
          `of ${requestOf(carrier)}: refused on that request. A worker or library ran one request's work in another's context${where}` +
          `. Where the app hands the callback over, wrap it in bindToRequest() from 'stepguard'`
      : `${call.op} ran after its request (${requestOf(call)}) was answered: judged by that request's own input, ` +
          `without its cached verdicts. If that request did not issue it, a library lost the request context${where}` +
          `. Where the app hands the callback to such a library, wrap it in bindToRequest() from 'stepguard'`,
  );
  telemetry.span(SPAN_STALE_CONTEXT, {
    [ATTR.SINK]: call.kind,
    [ATTR.OPERATION]: call.op,
    ...(call.method ? { [ATTR.HTTP_METHOD]: call.method } : {}),
    ...(call.route ? { [ATTR.HTTP_ROUTE]: call.route } : {}),
    [ATTR_STALE_FRAMES]: frames.join(' < '),
    ...(carrier ? { [ATTR_STALE_CARRIER]: requestOf(carrier) } : {}),
  });
  return frames;
}
