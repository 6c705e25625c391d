/**
 * The only module hooks/ import. A hook file normalises one library's call signatures into a
 * `SinkEvent`, asks `inspect`, and either calls the original or fails the call the library's own way.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestContext } from './context/request-context.js';
import type { SinkEvent, Verdict } from './events.js';
import { currentContext, runInContext } from './context/store.js';
import { getRuntime } from './runtime.js';
import { log, warnOnce, errorMessage } from './log.js';
import { wrap, unwrap, type AnyFunction } from './instrument/wrap.js';
import { agentIsLoading, asAgent, whileAgentLoads } from './instrument/loading.js';
import type { InputSource } from './events.js';

export type { SinkEvent, SqlEvent, ExecEvent, FsEvent, HttpOutEvent, CodeEvent, Verdict } from './events.js';
export type { AnyFunction } from './instrument/wrap.js';
export type { RequestContext } from './context/request-context.js';
export { wrap, unwrap };

/*
 * The judging side (inspect → judge, detectors, enforcement, telemetry) and the request context load at their
 * first use — the first sink call, the first request — not when the hooks are installed at start.
 */
/* eslint-disable @typescript-eslint/no-require-imports -- loaded on first use, off the start-up path */
let inspectImpl: ((event: SinkEvent, ctx?: RequestContext) => Verdict) | undefined;
let contextClass: typeof RequestContext | undefined;

/**
 * Judges one sink call (src/inspect.ts); never throws. `ctx`: the request context the wrapper already read with
 * `requestToInspect()` in this same synchronous call, so it is not read again.
 */
export function inspect(event: SinkEvent, ctx?: RequestContext): Verdict {
  inspectImpl ??= whileAgentLoads(() => (require('./inspect.js') as typeof import('./inspect.js')).inspect);
  // Everything judging does is the agent's own work: the modules it loads on first use (a detector, the step-up
  // service, the OpenTelemetry API at the first span) and the files it writes are not the app's sink calls.
  return asAgent(inspectImpl, event, ctx);
}

/**
 * Whether `inspect(event)` would judge the call at all (some detector applies to it, or some policy rule looks at
 * its kind): for a hook that must prepare the call before judging it (the HTML hook sets the response head aside),
 * and can skip that when nothing would. Never throws.
 */
export function wouldJudge(event: SinkEvent): boolean {
  try {
    wouldJudgeImpl ??= whileAgentLoads(() => (require('./inspect.js') as typeof import('./inspect.js')).wouldJudge);
    return wouldJudgeImpl(event);
  } catch {
    return true; // judge as before: inspect() reports its own failures and lets the call proceed
  }
}
let wouldJudgeImpl: ((event: SinkEvent) => boolean) | undefined;

function newRequestContext(...args: ConstructorParameters<typeof RequestContext>): RequestContext {
  contextClass ??= whileAgentLoads(() => (require('./context/request-context.js') as typeof import('./context/request-context.js')).RequestContext);
  return new contextClass(...args);
}
/* eslint-enable @typescript-eslint/no-require-imports */

/** The global the direct-eval rewrite calls (hooks/eval.ts); its name is part of rewritten app files. */
export const EVAL_CHECK_NAME = '__stepguardEval';
let evalRewrite: typeof import('./instrument/eval-rewrite.js') | undefined;

/** src/instrument/eval-rewrite.ts, loaded with the first app file that calls eval. */
export function rewriteDirectEval(source: string): string | undefined {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the tokenizer stays off the start-up path
  evalRewrite ??= whileAgentLoads(() => require('./instrument/eval-rewrite.js') as typeof import('./instrument/eval-rewrite.js'));
  return evalRewrite.rewriteDirectEval(source, EVAL_CHECK_NAME);
}
export { warnOnce, whileAgentLoads };

/** The hot-path gate every wrapper calls first: one AsyncLocalStorage read, nothing allocated. */
export function shouldInspect(): boolean {
  return requestToInspect() !== undefined;
}

/**
 * The gate of `shouldInspect`, returning the request context it read: a wrapper that needs the context several
 * times in one call (inspect, handDown, bindToRequest, the head check) passes it on instead of reading the
 * AsyncLocalStorage again. Each read is a native call and a keyed load on Node 20/22 (README, Benchmark results).
 */
export function requestToInspect(): RequestContext | undefined {
  const ctx = currentContext();
  return ctx !== undefined && getRuntime() !== undefined && !agentIsLoading() ? ctx : undefined;
}
export { currentOutgoing, runOutgoing, normalizeHost, describeUrl, type OutgoingCall } from './instrument/outgoing.js';

/**
 * One library call that passes the same statement through two wrapped layers (pg's `Pool.query` hands its text to
 * `Client.query` once a client is checked out) is judged once, by the outer layer, before it costs a connection.
 * The outer layer calls `handDown(text)` when it let the call through; the inner layer's `wasHandedDown(kind, text)`
 * is true for the call next in line in the same request with the same text, which it then does not judge again:
 * it would only find the request's cached verdict and repeat the search of other requests' input the outer call
 * did. Not when some policy rule tells operations apart: each layer is then judged under its own name.
 */
export function handDown(text: string, ctx: RequestContext | undefined = currentContext()): void {
  if (ctx !== undefined) ctx.handedDown = text;
}

export function wasHandedDown(kind: SinkEvent['kind'], text: string, ctx: RequestContext | undefined = currentContext()): boolean {
  if (ctx === undefined || ctx.handedDown !== text) return false;
  ctx.handedDown = undefined;
  return getRuntime()?.engine.distinguishesOperations(kind) === false;
}

/** Set when the response hook wraps `end` (hooks/html-response.ts): from then on every end of a response is noted. */
let responseEndsNoted = false;

/** The response hook wraps `end`, and calls noteResponseEnd at each call of it. */
export function noteResponseEnds(): void {
  responseEndsNoted = true;
}

/**
 * The app called `end` on `res`: the request it answers counts as answered from now on (src/context/live.ts,
 * RequestContext.finished read it from the request context, not from the response). True when `res` is the
 * response of `ctx`, the request being served; the response of another request in flight (long polling answered
 * by a later request, an end outside any request) is found in the list of requests in flight.
 */
export function noteResponseEnd(res: ServerResponse, ctx: RequestContext | undefined): boolean {
  if (ctx !== undefined && ctx.res === res) {
    ctx.responseEnded = true;
    return true;
  }
  liveRequests?.noteEnded(res);
  return false;
}

/**
 * True once per request, at the first body write of the request's own response: where its head is judged.
 * A flag on the request context the agent already has, rather than a WeakSet entry per response.
 */
export function firstBodyWriteOf(res: ServerResponse, ctx: RequestContext | undefined = currentContext()): boolean {
  if (ctx === undefined || ctx.res !== res || ctx.headJudged) return false;
  ctx.headJudged = true;
  return true;
}

/**
 * The response head last judged on each route, per rule engine (a reload starts afresh): its security header
 * values as `getHeader` returned them and whether it went over HTTPS. src/inspect.ts reports what a head can show
 * once per route and head, so a head that repeats the one last judged on its route can show nothing new.
 *
 * Once it repeats, the route's next HTML responses are not read at all: 1, then 3, 7, 15 and at most
 * MAX_UNREAD_HEADS of them after each read that finds the same head again, and none after a read that finds another
 * one. Reading a head (three header reads, the socket, a comparison) was most of the agent's cost on an HTML
 * response that reaches no sink (bench/instructions.mjs); what it can show is a report, never a refusal, and a
 * head that differs on some of a route's responses is still read on at least one in MAX_UNREAD_HEADS + 1 of them.
 * A response that sets a cookie, and a head given to `writeHead`, are read every time (hooks/html-response.ts).
 */
export interface JudgedHead {
  readonly csp: unknown;
  readonly nosniff: unknown;
  readonly hsts: unknown;
  readonly https: boolean;
  /** How many of the route's next HTML responses are not read. */
  unread: number;
  /** What `unread` becomes the next time the head is read and found the same. */
  nextUnread: number;
  /** Another head was judged on the route since, or the heads were forgotten: a URL that stood for it reads its route again. */
  replaced: boolean;
}

const MAX_UNREAD_HEADS = 31;

interface UrlOfRoute {
  readonly url: string;
  readonly method: string | undefined;
  readonly head: JudgedHead;
}

interface HeadsOfRoutes {
  readonly engine: object;
  readonly heads: Map<string, JudgedHead>;
  /**
   * A URL without a query, as a request arrived with it → the head of the route it was served by. The route is read
   * from the request (Express's `req.route`, `req.baseUrl`) after the app has routed it, when on Node 20 every
   * property read of an Express request missed V8's stub cache (bench/attribute.mjs: the two reads and the list of
   * live requests' read of a response cost about 13 k instructions of a `/hello` request); the URL was read when the
   * request arrived. An entry whose head was replaced is not used; with a query, or past MAX_URLS_WITH_HEADS, the
   * route is read.
   */
  readonly byUrl: Map<string, UrlOfRoute>;
  /** The entry found last: a run of responses to one URL compares two strings rather than hashing a new one each. */
  last: UrlOfRoute | undefined;
}

let lastHeads: HeadsOfRoutes | undefined;
const MAX_ROUTES_WITH_HEADS = 10_000;
const MAX_URLS_WITH_HEADS = 1_000;

function headsOfRoutes(): HeadsOfRoutes | undefined {
  const engine = getRuntime()?.engine;
  if (!engine) return undefined;
  // Only the current engine's heads are ever asked for: one comparison per HTML response, not a WeakMap lookup.
  if (lastHeads?.engine !== engine) lastHeads = { engine, heads: new Map(), byUrl: new Map(), last: undefined };
  return lastHeads;
}

function routeOf(ctx: RequestContext): string {
  return ctx.route ?? ctx.urlPath;
}

/** The head last judged on the current request's route, or undefined. Allocates only the first time a URL is asked. */
export function judgedHeadOf(ctx: RequestContext | undefined): JudgedHead | undefined {
  const state = ctx === undefined ? undefined : headsOfRoutes();
  if (ctx === undefined || state === undefined) return undefined;
  const url = ctx.arrivedUrl;
  if (url !== undefined) {
    let known = state.last;
    if (known === undefined || known.url !== url) known = state.byUrl.get(url);
    if (known !== undefined && known.method === ctx.arrivedMethod && !known.head.replaced) {
      state.last = known;
      return known.head;
    }
  }
  const head = state.heads.get(routeOf(ctx));
  if (head !== undefined && url !== undefined && !url.includes('?')) {
    if (state.byUrl.size >= MAX_URLS_WITH_HEADS) state.byUrl.clear();
    state.byUrl.set(url, (state.last = { url, method: ctx.arrivedMethod, head }));
  }
  return head;
}

/** The head was read again and found the same as `last`: the route's next responses are read less often. */
export function headRepeated(last: JudgedHead): void {
  last.unread = last.nextUnread;
  last.nextUnread = Math.min(last.nextUnread * 2 + 1, MAX_UNREAD_HEADS);
}

/** Records the values of a head that was just judged on the current request's route without a refusal. */
export function rememberJudgedHead(ctx: RequestContext | undefined, csp: unknown, nosniff: unknown, hsts: unknown, https: boolean): void {
  const heads = ctx === undefined ? undefined : headsOfRoutes()?.heads;
  if (!ctx || !heads) return;
  if (heads.size >= MAX_ROUTES_WITH_HEADS) {
    for (const forgotten of heads.values()) forgotten.replaced = true;
    heads.clear();
  }
  const route = routeOf(ctx);
  const before = heads.get(route);
  if (before !== undefined) before.replaced = true;
  heads.set(route, { csp, nosniff, hsts, https, unread: 0, nextUnread: 1, replaced: false });
}

/** The local address and port the request being served arrived on (undefined outside a real HTTP request). */
export function incomingServer(): { address: string | undefined; port: number } | undefined {
  const socket = currentContext()?.req.socket as { localAddress?: string; localPort?: number } | undefined;
  return socket && typeof socket.localPort === 'number' ? { address: socket.localAddress, port: socket.localPort } : undefined;
}

export interface HookInfo {
  /** Installed package version (undefined for builtins). */
  readonly version: string | undefined;
  readonly basedir: string | undefined;
}

export interface ModuleHook {
  /** The module as `require` names it: `pg`, `mysql2`, `child_process` (bare builtin names). */
  readonly module: string;
  /** Supported versions (semver range) for packages; builtins leave it out. */
  readonly versions?: string;
  /** Subpath entries that load the package's classes without its main module (`mysql2/promise`). */
  readonly entryPoints?: readonly string[];
  /** A builtin is patched in place before any caller gets it (at start, or at its first require/import), so ESM named imports see it too. */
  readonly builtin?: boolean;
  /** A global (`Function`, `fetch`): `patch(globalThis)` runs once at start; `module` only names it in messages. */
  readonly global?: boolean;
  /** Patch the module's exports in place (or return a replacement). Throwing marks the hook as failed. */
  patch(exports: unknown, info: HookInfo): unknown;
}

/**
 * A registry line (hooks/index.ts): what to hook and which versions, with the hook's code behind `load`,
 * which runs the first time the module is required (at start for builtins and globals).
 */
export interface LazyHook extends Omit<ModuleHook, 'patch'> {
  /** What STEPGUARD_DISABLED_HOOKS and `stepguard doctor` call it; several lines may share one name. */
  readonly name?: string;
  /** Requires the hook file and returns its hook; called at most once per line, on first need. */
  load(): ModuleHook;
}

export function defineHook(hook: ModuleHook): ModuleHook {
  return hook;
}

/** A recognised web framework (hooks/versions.ts FRAMEWORKS): what the start-up line says about it. */
export interface FrameworkLine {
  readonly package: string;
  readonly framework: string;
  /** semver range the end-to-end suite runs, or 'none'. */
  readonly tested: string;
  readonly covered: boolean;
  readonly input: string;
}

const announced = new Set<string>();

/** One line per framework copy the app loads: covered (and which input), or outside the tested versions. */
export function announceFramework(line: FrameworkLine, version: string | undefined): void {
  const label = `${line.framework} (${line.package}${version ? `@${version}` : ''})`;
  if (announced.has(label)) return;
  announced.add(label);
  if (!line.covered) {
    log.warn(`framework ${label}: recognised, NOT tested end to end: ${line.input}`);
    return;
  }
  if (version !== undefined && !versionSatisfies(version, line.tested)) {
    log.warn(`framework ${label}: request context from node:http as for any framework, but this version is outside the tested ${line.tested}; input: ${line.input}`);
    return;
  }
  log.info(`framework ${label}: request context and input covered — ${line.input}`);
}

function versionSatisfies(version: string, range: string): boolean {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- kept off the start-up path
  return (require('./version-range.js') as typeof import('./version-range.js')).versionInRange(version, range);
}

/**
 * Adds values to the current request's input that arrive through no part of the request the agent reads (a
 * document a GraphQL server took from its cache). `collect` runs only when inputs are gathered — at a sink.
 */
export function addRequestInput(source: InputSource, collect: (add: (path: string, value: string) => void) => void): void {
  const ctx = currentContext();
  if (!ctx) return;
  ctx.addInputSource((c) => collect((path, value) => c.add(source, path, value)));
}

/**
 * Re-binds a callback to the current request, for libraries that call back from a pooled socket's
 * context (pg, mysql2): without this a nested query would be judged against another request's input.
 */
export function bindToRequest<F extends AnyFunction>(fn: F, ctx: RequestContext | undefined = currentContext()): F {
  if (!ctx) return fn;
  // Only our own store is restored: an AsyncResource (let alone AsyncResource.bind, which on Node 20 also
  // defines a deprecated accessor) costs several µs per call once async hooks are on, and the callback's
  // other async context is the library's business, as it would be without the agent.
  // Called back in that request's context already (a pool handing over an idle client on a next tick), it runs as
  // it is: entering a context is the largest part of a bound call on Node 24, where each entry makes a new frame.
  const call = (self: unknown, args: IArguments): unknown =>
    currentContext() === ctx ? fn.apply(self, args as unknown as unknown[]) : runInContext(ctx, () => fn.apply(self, args as unknown as unknown[]));
  // Libraries may look at a callback's arity: the wrapper declares as many parameters as `fn`. (Defining
  // `length` afterwards cost about a microsecond per bound callback: it gives every wrapper its own map.)
  /* eslint-disable @typescript-eslint/no-unused-vars -- the parameters only set the wrapper's length */
  switch (fn.length) {
    case 0:
      return function (this: unknown) {
        return call(this, arguments);
      } as F;
    case 1:
      return function (this: unknown, _a: unknown) {
        return call(this, arguments);
      } as F;
    case 2:
      return function (this: unknown, _a: unknown, _b: unknown) {
        return call(this, arguments);
      } as F;
    case 3:
      return function (this: unknown, _a: unknown, _b: unknown, _c: unknown) {
        return call(this, arguments);
      } as F;
    default: {
      const bound = function (this: unknown) {
        return call(this, arguments);
      };
      Object.defineProperty(bound, 'length', { value: fn.length });
      return bound as F;
    }
  }
  /* eslint-enable @typescript-eslint/no-unused-vars */
}

/** Runs `fn` as part of the request it was created in (for event-style APIs). */
export function requestRunner(): (<R>(fn: () => R) => R) | undefined {
  const ctx = currentContext();
  return ctx ? (fn) => runInContext(ctx, fn) : undefined;
}

/** Finds the object on `proto`'s chain that owns `name` (libraries move methods to base classes). */
export function ownerOf(proto: object | null | undefined, name: string): object | undefined {
  let current = proto;
  while (current && current !== Object.prototype) {
    if (Object.prototype.hasOwnProperty.call(current, name)) return current;
    current = Object.getPrototypeOf(current) as object | null;
  }
  return undefined;
}

/** src/context/live.ts, loaded with the first request. */
let liveRequests: typeof import('./context/live.js') | undefined;

/**
 * Runs the app's request handling inside a fresh request context. Nothing is parsed here: inputs are
 * gathered at the first sink. The raw body is tapped (chunk references only, capped) because apps
 * without a body parser read it themselves and it is gone by the time a sink runs.
 */
export function serveRequest<R>(req: IncomingMessage, res: ServerResponse, handle: () => R): R {
  const runtime = getRuntime();
  if (!runtime || !req || typeof req !== 'object') return handle();
  let ctx: RequestContext;
  try {
    ctx = newRequestContext(req, res, runtime.config);
    ctx.endIsNoted = responseEndsNoted;
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- off the start-up path
    (liveRequests ??= whileAgentLoads(() => require('./context/live.js') as typeof import('./context/live.js'))).trackLive(ctx);
    if (hasBody(ctx.arrivedHeaders ?? req.headers)) {
      tapBody(req, ctx);
      bindEvents(req, ctx);
    } else ctx.arrivedWithoutBody = true;
    if (runtime.endpoints?.handles(ctx)) {
      runInContext(ctx, () => runtime.endpoints!.serve(ctx));
      return true as R;
    }
    // Adaptive step-up: the facts this request's signals need are loaded (one round trip) before the app
    // sees the request, so every sink can decide synchronously. The body keeps buffering meanwhile.
    const loading = runtime.risk?.begin(ctx);
    if (loading) {
      void loading.then(() => process.nextTick(() => runInContext(ctx, handle)));
      return true as R;
    }
  } catch (error) {
    warnOnce('serve-request', `could not set up the request context; request served unprotected: ${errorMessage(error)}`);
    return handle();
  }
  return runInContext(ctx, handle);
}

function hasBody(headers: IncomingMessage['headers']): boolean {
  const length = headers['content-length'];
  return (length !== undefined && length !== '0') || headers['transfer-encoding'] !== undefined;
}

/**
 * Body events ('data', 'end') fire from the socket, outside the request's async context; listeners such
 * as a hand-written body reader would then reach sinks unprotected. Emitting in the request's context
 * keeps them inside it.
 */
function bindEvents(req: IncomingMessage, ctx: RequestContext): void {
  const emit = req.emit;
  Object.defineProperty(req, 'emit', {
    configurable: true,
    writable: true,
    value: function (this: IncomingMessage, ...args: unknown[]) {
      return runInContext(ctx, () => emit.apply(this, args as Parameters<typeof emit>));
    },
  });
}

function tapBody(req: IncomingMessage, ctx: RequestContext): void {
  const push = req.push;
  // The HTTP parser hands every body chunk to `push`; an own property on this one request sees them
  // without switching the stream to flowing mode or changing what the app reads.
  Object.defineProperty(req, 'push', {
    configurable: true,
    writable: true,
    value: function (this: IncomingMessage, chunk: unknown, encoding?: BufferEncoding) {
      if (chunk) ctx.captureBodyChunk(chunk);
      return push.call(this, chunk, encoding);
    },
  });
}

// ---- code sinks (hooks/function.ts, hooks/vm.ts): the text V8 compiles, computed without side effects ----

/**
 * What `${value}` gives, when computing it has no side effects: primitives (not symbols) and arrays of them
 * (JSON input); `undefined` for anything else, which is then passed through unjudged.
 */
export function textOf(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
    case 'boolean':
    case 'bigint':
    case 'undefined':
      return String(value);
    case 'object':
      if (value === null) return 'null';
      if (Array.isArray(value) && value.every((v) => v === null || (typeof v !== 'object' && typeof v !== 'function' && typeof v !== 'symbol'))) {
        return Array.prototype.join.call(value, ',');
      }
      return undefined;
    default:
      return undefined;
  }
}

/** The source V8 builds for `new Function(p1, …, pn, body)` (CreateDynamicFunction). */
export function sourceOf(prefix: string, args: readonly unknown[]): string | undefined {
  if (args.length === 0) return undefined;
  const body = textOf(args[args.length - 1]);
  if (body === undefined) return undefined;
  let params = '';
  for (let k = 0; k < args.length - 1; k++) {
    const p = textOf(args[k]);
    if (p === undefined) return undefined;
    params += k === 0 ? p : `,${p}`;
  }
  return `${prefix} anonymous(${params}\n) {\n${body}\n}`;
}
