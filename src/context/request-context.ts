import type { IncomingMessage, ServerResponse } from 'node:http';
import type { UserInput, Verdict } from '../events.js';
import type { Finding } from '../detectors/types.js';
import { BUDGET_MAX_DEPTH, InputCollector, ScreenCollector, type InputLimits } from './user-input.js';
import type { ValueScreen } from '../detectors/types.js';
import { RequestLeaves, SearchCollector, type InputLimitExceeded, type InputsForSink } from './input-limits.js';
import { clientAddress, type TrustedProxies } from './client-address.js';
import { addDocumentLiterals, addGraphqlInputs } from './graphql-input.js';

/** verdictOf's answer for a call this request has not judged (a verdict may itself be undefined: nothing to do). */
export const NOT_JUDGED: unique symbol = Symbol('not judged');

/** inputsFor's answer when the screen turned every value of the request away. */
const NOTHING_FOR_SINK: InputsForSink = Object.freeze({ inputs: Object.freeze([]) as readonly UserInput[], limitExceeded: undefined });

/** One request's input within the budget; every value of it, for the search pass, once a sink needed them. */
interface Gathered {
  readonly budget: InputCollector;
  /** The budget pass's own list (it adds nothing after gathering): read, never changed. */
  readonly inputs: readonly UserInput[];
  leaves?: RequestLeaves;
}

/**
 * Everything the agent knows about the request being served. Created for every request, so the
 * constructor does almost nothing: inputs are flattened lazily at the first sink and cached.
 */
export class RequestContext {
  /** Raw body chunks as the HTTP parser delivered them (references, not copies), up to the cap. */
  private bodyChunks: Buffer[] | undefined;
  private bodyBytes = 0;
  bodyTruncated = false;
  private gathered: Gathered | undefined;
  /**
   * The verdict this request gave a call before — by its kind (`kind`, or `kind\0op` when rules tell operations
   * apart) and its sink text — or NOT_JUDGED: the same call is not judged twice.
   */
  verdictOf(calls: string, target: string): Verdict | typeof NOT_JUDGED {
    // Compared before any Map: a request reaches one sink call in the common case, and the statement is usually the
    // very string judged before (a literal the app holds), so the comparison ends at the pointer.
    if (this.firstTarget === target && this.firstCalls === calls) return this.firstVerdict;
    const ofKind = this.laterCalls?.get(calls);
    return ofKind !== undefined && ofKind.has(target) ? ofKind.get(target) : NOT_JUDGED;
  }

  /** Remembers a call's verdict (see verdictOf). */
  rememberVerdict(calls: string, target: string, verdict: Verdict): void {
    this.judgedCount++;
    if (this.firstTarget === undefined) {
      this.firstCalls = calls;
      this.firstTarget = target;
      this.firstVerdict = verdict;
      return;
    }
    const later = (this.laterCalls ??= new Map());
    let ofKind = later.get(calls);
    if (ofKind === undefined) later.set(calls, (ofKind = new Map()));
    ofKind.set(target, verdict);
  }

  /** How many calls this request judged (a call judged again from its verdict counts once). */
  judgedCount = 0;
  // The first judged call is held in fields, later ones in Maps created at first use: two Maps per request
  // were a measurable part of a request's cost, and most requests judge one call or none.
  private firstCalls: string | undefined;
  private firstTarget: string | undefined;
  private firstVerdict: Verdict;
  private laterCalls: Map<string, Map<string, Verdict>> | undefined;
  // The collections below are created at first use: most requests never reach a sink.
  /** The `input-limit` finding is reported once per request; set when it was. */
  inputLimitReported = false;
  /** Findings so far (policy rules can require "an attack occurred earlier in this request"). */
  get findings(): Finding[] {
    return (this.findingsSoFar ??= []);
  }
  private findingsSoFar: Finding[] | undefined;
  /** Set once the agent has answered this request itself (403/401/503). */
  responded = false;
  /** The head of this request's response was judged (at its first body write; hooks/html-response.ts). */
  headJudged = false;
  /**
   * The app called `end` on this request's own response (hooks/html-response.ts sets it): the list of requests in
   * flight (src/context/live.ts) counts the request as answered without reading the response. Once Express has
   * swapped a response's prototype, each property read of it missed V8's stub cache on Node 20, and the list read
   * `writableFinished` of an earlier response on every request (two misses, with the getter's own read). Not the
   * same as `finished`, which waits until the answer has left (and reads this first).
   */
  responseEnded = false;
  /** Every `end` of this request's response sets `responseEnded` (the response hook is on): `finished` reads it first. */
  endIsNoted = false;
  /**
   * An HTTP request that sent no body (no `Content-Length` above 0, no `Transfer-Encoding`): no upload parser has
   * anything to put on `req.file` / `req.files`, so gathering does not read them (each read of an Express request
   * missed V8's stub cache on Node 20 and 22). False when not known (a context made by `runWithContext`).
   */
  arrivedWithoutBody = false;
  /** A statement an outer layer judged and let through, for the inner layer it hands it to (hook-kit's handDown). */
  handedDown: string | undefined;

  /**
   * The response was sent completely: work still running in this context either belongs to a request that is
   * over or was queued here by a library from another request (src/context/stale.ts). A connection the client
   * closed before the answer does not count: that request's handler is still running its own work, and a client
   * must not be able to shed its request's route and grants by hanging up. Read from the response itself once the
   * app has ended it, so the hot path pays nothing until a sink asks.
   */
  get finished(): boolean {
    // Not ended, so not finished, without a read of the response (each one missed V8's stub cache on Node 20 and 22
    // in an Express app, and this is read at every sink).
    if (this.endIsNoted && !this.responseEnded) return false;
    return this.res?.writableFinished === true;
  }
  /** Free slots for subsystems (step-up caches identity and grants here). */
  get slots(): Map<symbol, unknown> {
    return (this.slotMap ??= new Map());
  }
  private slotMap: Map<symbol, unknown> | undefined;
  /**
   * Input a library hands over during the request that is in no part of it (a GraphQL document the server took
   * from its persisted-query cache); walked when inputs are gathered, like the rest.
   */
  extraInputs: ((c: InputCollector) => void)[] | undefined;

  addInputSource(collect: (c: InputCollector) => void): void {
    (this.extraInputs ??= []).push(collect);
    this.gathered = undefined;
    this.screenedText = undefined;
  }

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse | undefined,
    private readonly limits: InputLimits & { readonly maxBodyBytes: number; readonly trustedProxies?: TrustedProxies | undefined },
  ) {
    this.arrivedUrl = req.url;
    this.arrivedMethod = req.method;
    this.arrivedHeaders = req.headers;
  }

  /**
   * The request's URL and method as they arrived, read when the context is made: before a framework has swapped the
   * request's prototype, after which every read of a property of it missed V8's stub cache on Node 20 and 22 (about
   * three thousand instructions each on Node 20, bench/attribute.mjs). For the lookups made on every response
   * (hook-kit's judgedHeadOf) and the input gathered from the URL; `urlPath` reads the URL as the app may have
   * rewritten it.
   */
  readonly arrivedUrl: string | undefined;
  readonly arrivedMethod: string | undefined;
  /**
   * The headers object Node parsed from what the client sent, taken with the URL (a read of `req.headers` later cost
   * about 1.5 k instructions on Node 22). Changes made to it in place are seen; an object the app puts in its place
   * is not: the values the client sent are the ones gathered.
   */
  readonly arrivedHeaders: IncomingMessage['headers'] | undefined;

  captureBodyChunk(chunk: unknown): void {
    if (!Buffer.isBuffer(chunk) || this.bodyTruncated) return;
    if (this.bodyBytes + chunk.length > this.limits.maxBodyBytes) {
      this.bodyTruncated = true;
      return;
    }
    (this.bodyChunks ??= []).push(chunk);
    this.bodyBytes += chunk.length;
    this.gathered = undefined;
    this.screenedText = undefined;
  }

  rawBody(): Buffer | undefined {
    if (!this.bodyChunks) return undefined;
    if (this.bodyChunks.length > 1) this.bodyChunks = [Buffer.concat(this.bodyChunks)];
    return this.bodyChunks[0];
  }

  /** User input within the configured budget, flattened on first use (the list every detector sees in full). */
  inputs(): readonly UserInput[] {
    return this.gather().inputs;
  }

  /**
   * The inputs to judge a sink by: the budget, plus — when the request exceeded it — every other request value
   * that occurs in `sinkText`; and whether some part of the request could not be judged at all.
   */
  inputsFor(sinkText: string, screen?: ValueScreen): InputsForSink {
    const screened = screen === undefined ? undefined : this.screenedInputsFor(sinkText, screen);
    if (screened !== undefined) return screened;
    const gathered = this.gather();
    const raw = this.rawBodyLimit();
    if (gathered.budget.skipped === undefined) return { inputs: gathered.inputs, limitExceeded: raw };
    const leaves = (gathered.leaves ??= this.walkLeaves(gathered.budget));
    const search = new SearchCollector(sinkText, gathered.budget, this.limits.maxInputs);
    search.searchLeaves(leaves);
    let limitExceeded: InputLimitExceeded | undefined = raw;
    if (leaves.skipped) limitExceeded ??= { reason: leaves.skipped, path: leaves.skippedAt ?? '' };
    if (search.skipped) limitExceeded ??= { reason: search.skipped, path: search.skippedAt ?? '' };
    return { inputs: search.found.length === 0 ? gathered.inputs : [...gathered.inputs, ...search.found], limitExceeded };
  }

  /**
   * Whether some value of the request's input (two characters or more) occurs in `text`: the test for "this call
   * is this request's own", run on sink calls while other requests are in flight. Within the budget (nearly every
   * request) it reads the gathered list and allocates nothing.
   */
  someInputOccursIn(text: string): boolean {
    if (text === this.screenedText && this.screenedBody === bodyOf(this.req)) return this.screenedOccurs;
    const gathered = this.gather();
    const inputs = gathered.budget.skipped === undefined ? gathered.inputs : this.inputsFor(text).inputs;
    for (let i = 0; i < inputs.length; i++) {
      const value = inputs[i]!.value;
      if (value.length >= 2 && text.includes(value)) return true;
    }
    return false;
  }

  /**
   * The inputs for the request's first screened sink without gathering the request (ScreenCollector): only the
   * values `screen` lets through are kept, so a statement that holds none of them costs one walk that keeps nothing.
   * Only before anything was gathered, once per request (a second sink gathers, and every later one reads the
   * gathered list), and only when the budget pass would leave nothing out and the raw body is whole (undefined
   * otherwise: the caller gathers), so the judgement is the one gathering gives. The walk also answers
   * someInputOccursIn for this text.
   */
  private screenedInputsFor(sinkText: string, screen: ValueScreen): InputsForSink | undefined {
    const body = bodyOf(this.req);
    if (this.screenWalks > 0 || (this.gathered !== undefined && this.bodySeen === body) || this.rawBodyLimit() !== undefined) return undefined;
    this.screenWalks++;
    const walk = new ScreenCollector({ maxInputs: this.limits.maxInputs, maxInputBytes: this.limits.maxInputBytes, maxDepth: BUDGET_MAX_DEPTH }, sinkText, screen);
    collectInputs(this, walk, body);
    if (walk.skipped !== undefined || walk.keptOutOfOrder()) return undefined;
    this.screenedText = sinkText;
    this.screenedBody = body;
    this.screenedOccurs = walk.occurs;
    const kept = walk.keptInputs();
    return kept.length === 0 ? NOTHING_FOR_SINK : { inputs: kept, limitExceeded: undefined };
  }
  /** The text screenedInputsFor walked the request for, with the body it walked, and whether some value occurs in it as it is. */
  private screenedText: string | undefined;
  private screenedBody: unknown;
  private screenedOccurs = false;
  /** Walks of the request by screenedInputsFor (at most one per request). */
  screenWalks = 0;

  /** Walks of the whole request for the search pass (one per parsed body, whatever the number of sinks). */
  leafWalks = 0;

  private walkLeaves(budget: InputCollector): RequestLeaves {
    this.leafWalks++;
    const leaves = new RequestLeaves(budget);
    collectInputs(this, leaves, bodyOf(this.req));
    return leaves;
  }

  /** Gathers again when the framework parsed more since (e.g. the body, after a first sink in a middleware). */
  private gather(): Gathered {
    const body = bodyOf(this.req);
    if (this.gathered && this.bodySeen === body) return this.gathered;
    this.bodySeen = body;
    // A plain literal, not `{ ...limits, maxDepth }`: V8 defines a property that follows a spread through its runtime,
    // with a map transition, on every gathering.
    const budget = new InputCollector({ maxInputs: this.limits.maxInputs, maxInputBytes: this.limits.maxInputBytes, maxDepth: BUDGET_MAX_DEPTH });
    collectInputs(this, budget, body);
    this.gathered = { budget, inputs: budget.keptInputs() };
    return this.gathered;
  }
  private bodySeen: unknown;

  /** The app reads the body itself and it was longer than what the agent keeps: the rest was never seen. */
  private rawBodyLimit(): InputLimitExceeded | undefined {
    return this.bodyTruncated && this.usesRawBody() ? { reason: 'raw-body', path: 'body' } : undefined;
  }

  /**
   * Whether the raw body stands in for a parsed one; decided once per parsed body (an emptiness test walks the keys).
   * `body` is the request's `body` when the caller has just read it: each read of a property of an Express request
   * runs through V8's runtime on Node 20 and 22 (see arrivedUrl), so a walk reads it once.
   */
  usesRawBody(body: unknown = bodyOf(this.req)): boolean {
    if (this.rawBodyDecision?.body !== body || this.rawBodyDecision === undefined) this.rawBodyDecision = { body, raw: usesRawBody(this.req as FrameworkRequest, body, this.arrivedWithoutBody) };
    return this.rawBodyDecision.raw;
  }
  private rawBodyDecision: { body: unknown; raw: boolean } | undefined;

  get method(): string | undefined {
    return this.req.method;
  }

  get urlPath(): string {
    const url = this.req.url ?? '/';
    const q = url.indexOf('?');
    return q === -1 ? url : url.slice(0, q);
  }

  /** Route template when the framework exposes one on the raw request (Express). */
  get route(): string | undefined {
    const r = this.req as IncomingMessage & { route?: { path?: unknown }; baseUrl?: unknown };
    const path = r.route?.path;
    if (typeof path !== 'string') return undefined;
    return (typeof r.baseUrl === 'string' ? r.baseUrl : '') + path;
  }

  /** The configured trusted proxies (undefined: forwarding headers are never believed). */
  get trustedProxies(): TrustedProxies | undefined {
    return this.limits.trustedProxies;
  }

  /** The client address through trusted proxies only (context/client-address.ts), computed once per request. */
  get clientAddress(): string | undefined {
    return clientAddress(this);
  }
}

type FrameworkRequest = IncomingMessage & {
  body?: unknown;
  query?: unknown;
  params?: unknown;
  cookies?: unknown;
  file?: unknown;
  files?: unknown;
};

/** Properties a framework may or may not have put on the request, depending on the app's middleware. */
type OptionalRequestProperty = 'body' | 'file' | 'files' | 'cookies';

/**
 * `req[name]` for a property that is often absent (an app without a body parser has no `req.body`). On Node 20 and 22
 * a read of a property that an Express request lacks ran through V8's runtime every time (the lookup walks the
 * request's prototypes, which V8 does not cache here): about 3 k instructions per read on Node 22
 * (bench/attribute.mjs). `Object.hasOwn` looks at the request alone; a prototype (a framework's request class) is
 * asked once whether its chain defines the name, and only then is the property read through it.
 */
function frameworkProperty(req: IncomingMessage, name: OptionalRequestProperty): unknown {
  if (Object.hasOwn(req, name)) return (req as FrameworkRequest)[name];
  return inheritedBy(Object.getPrototypeOf(req) as object | null)[name] ? (req as FrameworkRequest)[name] : undefined;
}

function bodyOf(req: IncomingMessage): unknown {
  return frameworkProperty(req, 'body');
}

type Inherited = Readonly<Record<OptionalRequestProperty, boolean>>;
/**
 * The request prototype last asked about, and which of the names its chain defines: an app serves its requests with
 * one prototype (Express's `app.request`). Asked again whenever another prototype comes; a framework defines its
 * request accessors when it loads, before it serves.
 */
const NOTHING_INHERITED: Inherited = { body: false, file: false, files: false, cookies: false };
let lastPrototype: object | null | undefined;
let lastInherited = NOTHING_INHERITED;

function inheritedBy(prototype: object | null): Inherited {
  if (prototype === lastPrototype) return lastInherited;
  lastPrototype = prototype;
  lastInherited =
    prototype === null ? NOTHING_INHERITED : { body: 'body' in prototype, file: 'file' in prototype, files: 'files' in prototype, cookies: 'cookies' in prototype };
  return lastInherited;
}

/** No framework parsed the body (or it parsed nothing of it): the agent's own copy of the raw body stands in. */
function usesRawBody(req: FrameworkRequest, body: unknown, withoutBody: boolean): boolean {
  if (!withoutBody && (frameworkProperty(req, 'file') !== undefined || frameworkProperty(req, 'files') !== undefined)) return false;
  if (body === undefined) return true;
  return typeof body === 'object' && body !== null && !ArrayBuffer.isView(body) && Object.getPrototypeOf(body) === Object.prototype && isEmpty(body);
}

function isEmpty(object: object): boolean {
  for (const _key in object) return false;
  return true;
}

/**
 * Every input of the request into `c`. `body` is the request's `body`, read by the caller. Each property of the
 * request is read once (into a local): see usesRawBody.
 */
function collectInputs(ctx: RequestContext, c: InputCollector, body: unknown): void {
  const req = ctx.req as FrameworkRequest;
  // The URL the client sent, read when the request arrived: a router that strips its mount point from `req.url`
  // while it dispatches, or a rewrite, leaves the client's input as it was; and a read of `req.url` here missed
  // V8's stub cache on Node 20 and 22 once Express had swapped the request's prototype.
  const url = ctx.arrivedUrl ?? req.url ?? '/';
  const q = url.indexOf('?');

  if (q !== -1) {
    const search = url.slice(q + 1);
    c.add('query', 'query', search);
    forEachQueryPair(search, (key, value) => {
      c.addNamed('query', 'query', key, key, true);
      c.addNamed('query', 'query', key, value);
    });
    if (search.includes('query=')) addGraphqlInputs(c, 'query', 'query', Object.fromEntries(new URLSearchParams(search)));
  }
  const query = req.query;
  if (query && typeof query === 'object') c.addTree('query', 'query', query);

  // Path segments stand in for route params in frameworks that keep them off the raw request. Cut out with
  // indexOf rather than split('/'), which went through V8's runtime and cost more than the rest of the path work.
  const pathEnd = q === -1 ? url.length : q;
  for (let i = 0, start = 0; start <= pathEnd; i++) {
    let end = url.indexOf('/', start);
    if (end === -1 || end > pathEnd) end = pathEnd;
    if (end > start) c.addNamed('path', 'path', i, url.slice(start, end));
    start = end + 1;
  }
  const params = req.params;
  if (params && typeof params === 'object') c.addTree('params', 'params', params);

  const headers = ctx.arrivedHeaders ?? req.headers;
  const cookieHeader = headers.cookie;
  if (typeof cookieHeader === 'string') {
    for (let start = 0; start < cookieHeader.length; ) {
      let end = cookieHeader.indexOf(';', start);
      if (end === -1) end = cookieHeader.length;
      const eq = cookieHeader.indexOf('=', start);
      if (eq !== -1 && eq < end) {
        const name = cookieHeader.slice(start, eq).trim();
        let value = cookieHeader.slice(eq + 1, end).trim();
        if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
        c.addNamed('cookies', 'cookies', name, value);
      }
      start = end + 1;
    }
  }
  // A cookie parser fills `req.cookies` from the Cookie header: an HTTP request without one has none to give (a
  // context made by runWithContext may carry cookies of its own).
  if (typeof cookieHeader === 'string' || ctx.res === undefined) {
    const cookies = frameworkProperty(req, 'cookies');
    if (cookies && typeof cookies === 'object') c.addTree('cookies', 'cookies', cookies);
  }

  // Object.keys, not Object.entries: the pairs it builds were the largest single cost of gathering a small request.
  const names = Object.keys(headers);
  for (let k = 0; k < names.length; k++) {
    const name = names[k]!;
    const value = headers[name];
    if (name === 'cookie' || value === undefined) continue;
    if (Array.isArray(value)) value.forEach((v, i) => c.addNamed('headers', `headers.${name}`, i, v));
    else c.addNamed('headers', 'headers', name, value);
  }

  if (ctx.usesRawBody(body)) {
    const raw = ctx.rawBody();
    if (raw) addRawBody(c, raw, headers['content-type']);
  } else {
    c.addTree('body', 'body', body);
    addGraphqlInputs(c, 'body', 'body', body);
  }

  if (ctx.extraInputs) for (const collect of ctx.extraInputs) collect(c);

  if (ctx.arrivedWithoutBody) return;
  const file = frameworkProperty(req, 'file');
  if (file && typeof file === 'object') addUploadedFile(c, 'files.file', file);
  const files = frameworkProperty(req, 'files');
  if (Array.isArray(files)) files.forEach((f, i) => addUploadedFile(c, `files.${i}`, f));
  else if (files && typeof files === 'object') {
    for (const [field, list] of Object.entries(files)) {
      if (Array.isArray(list)) list.forEach((f, i) => addUploadedFile(c, `files.${field}.${i}`, f));
    }
  }
}

/**
 * The pairs `new URLSearchParams(search)` yields, in order. A query without `%` and `+` has nothing to decode, so
 * its pairs are the plain pieces between `&` and the first `=` (what the WHATWG parser does with such input), found
 * without building a URLSearchParams; any other query goes through URLSearchParams itself.
 */
export function forEachQueryPair(search: string, visit: (key: string, value: string) => void): void {
  // A leading `?` is dropped by URLSearchParams; lone surrogates become U+FFFD.
  if (search.includes('%') || search.includes('+') || search.startsWith('?') || !(search as string & { isWellFormed(): boolean }).isWellFormed()) {
    for (const [key, value] of new URLSearchParams(search)) visit(key, value);
    return;
  }
  let start = 0;
  while (start <= search.length) {
    let end = search.indexOf('&', start);
    if (end === -1) end = search.length;
    if (end > start) {
      const eq = search.indexOf('=', start);
      if (eq === -1 || eq > end) visit(search.slice(start, end), '');
      else visit(search.slice(start, eq), search.slice(eq + 1, end));
    }
    start = end + 1;
  }
}

/** The body as the client sent it, parsed by content type — the source for apps without a body parser. */
function addRawBody(c: InputCollector, raw: Buffer, contentType: string | undefined): void {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const text = raw.toString('utf8');
  if (type === 'application/json' || type.endsWith('+json')) {
    try {
      const parsed = JSON.parse(text) as unknown;
      c.addTree('body', 'body', parsed);
      addGraphqlInputs(c, 'body', 'body', parsed);
      return;
    } catch {
      // not JSON after all: fall through to text
    }
  } else if (type === 'application/x-www-form-urlencoded') {
    for (const [key, value] of new URLSearchParams(text)) {
      c.addNamed('body', 'body', key, key, true);
      c.addNamed('body', 'body', key, value);
    }
    return;
  } else if (type.startsWith('multipart/')) {
    addMultipartParts(c, text, contentType ?? '');
    return;
  } else if (type === 'application/graphql') {
    addDocumentLiterals(c, 'body', 'body', text);
  }
  c.addBuffer('body', 'body', raw);
}

function addMultipartParts(c: InputCollector, text: string, contentType: string): void {
  const match = /boundary=(?:"([^"]{1,70})"|([^;\s]{1,70}))/i.exec(contentType);
  const boundary = match?.[1] ?? match?.[2];
  if (!boundary) return;
  const parts = text.split(`--${boundary}`);
  for (const part of parts) {
    const headerEnd = part.indexOf('\r\n\r\n');
    if (headerEnd === -1) continue;
    const headers = part.slice(0, headerEnd);
    let content = part.slice(headerEnd + 4);
    if (content.endsWith('\r\n')) content = content.slice(0, -2);
    const name = /name="([^"]{0,200})"/i.exec(headers)?.[1] ?? 'part';
    const filename = /filename="([^"]{0,1000})"/i.exec(headers)?.[1];
    if (filename !== undefined) {
      c.add('files', `files.${name}.name`, filename);
      c.add('files', `files.${name}`, content);
    } else {
      c.add('body', `body.${name}`, content);
    }
  }
}

function addUploadedFile(c: InputCollector, path: string, file: unknown): void {
  if (!file || typeof file !== 'object') return;
  const f = file as { originalname?: unknown; buffer?: unknown };
  if (typeof f.originalname === 'string') c.add('files', `${path}.name`, f.originalname);
  if (Buffer.isBuffer(f.buffer)) c.addBuffer('files', path, f.buffer);
}
