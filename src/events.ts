/**
 * THE CONTRACT between hooks and the judging core.
 *
 * A hook turns one library call into one `SinkEvent`; `inspect()` answers with a `Verdict`.
 * Adding a sink kind here makes every exhaustive `switch` in src/ fail to compile until it is handled.
 */

export type SqlDialect = 'postgres' | 'mysql';

export interface SqlEvent {
  readonly kind: 'sql';
  /** `<module>.<method>`, e.g. `pg.query`, `mysql2.execute`. */
  readonly op: string;
  readonly dialect: SqlDialect;
  /** OTel `db.system.name` value. */
  readonly system: 'postgresql' | 'mysql' | 'mariadb';
  /** The statement text as the app wrote it (placeholders, not bound values). */
  readonly sql: string;
}

export interface ExecEvent {
  readonly kind: 'exec';
  readonly op: string;
  /**
   * The program as the call names it (`execFile(file, …)`, `spawn(file, …)`). For `exec(command)` and
   * `execSync(command)`: the whole command line, with `shell` set — as Node itself normalizes them.
   */
  readonly file: string;
  readonly args: readonly string[];
  /**
   * The call's `shell` option as given (`exec`/`execSync`: `true`, or the shell path passed). When set, a shell
   * parses `commandLine(event)`. Whether an argv without it still reaches a shell (`sh -c`, `su -c`, `sudo …`)
   * is the command-injection detector's decision, not the hook's.
   */
  readonly shell: boolean | string | undefined;
}

/** The text of an exec call: what a shell parses when `shell` is set, else the argv joined by blanks. */
export function commandLine(event: ExecEvent): string {
  return event.args.length === 0 ? event.file : `${event.file} ${event.args.join(' ')}`;
}

export interface FsEvent {
  readonly kind: 'fs';
  readonly op: string;
  readonly path: string;
  readonly write: boolean;
}

export interface HttpOutEvent {
  readonly kind: 'http.out';
  readonly op: string;
  /** The URL requested, as the app wrote it when it passed a string; for a redirect hop, that hop's URL. */
  readonly url: string;
  /** A redirect the client follows: the URL the app asked for, first in the chain. */
  readonly redirectFrom?: string;
  /**
   * Set at connection time: the IP address the socket is about to connect to (the DNS answer, or the
   * literal). A request is judged once by its URL and again by each address it really connects to.
   */
  readonly address?: string;
  /** The local address and port the incoming request arrived on: a request to it is the app calling itself. */
  readonly server?: { readonly address: string | undefined; readonly port: number };
}

export interface CodeEvent {
  readonly kind: 'code';
  /** `new Function`, `vm.runInNewContext`, … */
  readonly op: string;
  /** The JavaScript source the engine compiles (for `Function`: the text V8 builds from parameters and body). */
  readonly source: string;
}

// ---------------------------------------------------------------------------------------------------------
// Issue #12 part B: sinks in the response the app sends and in the parsers it calls. Kept as one block so
// other branches adding kinds above merge cleanly.

export interface RedirectEvent {
  readonly kind: 'redirect';
  /** `res.setHeader`, `res.writeHead`, … */
  readonly op: string;
  /** The `Location` header value as the app set it. */
  readonly location: string;
  /** The request's own `Host` (the app's origin as the browser sees it); undefined outside a request. */
  readonly self: string | undefined;
}

export interface HtmlEvent {
  readonly kind: 'html';
  /** `res.write`, `res.end`. */
  readonly op: string;
  /** One chunk of an HTML response body, as text. */
  readonly html: string;
}

export interface DeserializeEvent {
  readonly kind: 'deserialize';
  /** `node-serialize.unserialize`, `js-yaml.load`, … */
  readonly op: string;
  /** Which loader: it decides which markers make it run code. */
  readonly format: 'node-serialize' | 'yaml';
  /** The serialized text the loader reads (an object argument as JSON). */
  readonly text: string;
}

export interface XmlEvent {
  readonly kind: 'xml';
  /** `libxmljs2.parseXml`, … */
  readonly op: string;
  /** The document text the parser reads. */
  readonly xml: string;
  /** The parser substitutes entities or loads DTDs (`noent`, `dtdload`): external entities are fetched. */
  readonly externalEntities: boolean;
}

/**
 * Insecure configuration (issue #12 B6): not a sink of request input but a fact about how the app answers or
 * stores secrets. `response`: the head of a response about to be sent, as `name: value` lines with lower-case
 * names and cookie *values* left out (`set-cookie: sid=…; Path=/; HttpOnly`); `hash`: a weak digest
 * (`crypto.createHash('md5'|'sha1')`) of `data`.
 */
export interface ConfigEvent {
  readonly kind: 'config';
  /** `res.writeHead`, `crypto.createHash`. */
  readonly op: string;
  readonly check: 'response' | 'hash';
  /** response: the head lines; hash: the algorithm. */
  readonly text: string;
  /** response: the request arrived over TLS (or a proxy said so with `X-Forwarded-Proto: https`). */
  readonly https?: boolean;
  /** hash: the text hashed (first 256 characters). */
  readonly data?: string;
  /** response: names of cookies whose value holds a recent `Math.random()` output. */
  readonly randomCookies?: readonly string[];
}

export type ResponseSinkEvent = RedirectEvent | HtmlEvent | DeserializeEvent | XmlEvent;
export const RESPONSE_SINK_KINDS = ['redirect', 'html', 'deserialize', 'xml'] as const satisfies readonly ResponseSinkEvent['kind'][];

/** Where a piece of user input came from. */
export type InputSource = 'query' | 'body' | 'params' | 'path' | 'cookies' | 'headers' | 'files';

export interface UserInput {
  readonly source: InputSource;
  /** Dotted path for telemetry, e.g. `body.user.name`, `query.id`, `headers.user-agent`. */
  readonly path: string;
  readonly value: string;
  /** An object key or parameter name rather than a value: it can carry an attack, but a key that matches a
   * column name (`?name=…` and `WHERE name = $1`) is coincidence, not an unparameterised flow. */
  readonly isKey?: boolean;
}

/** `undefined` = let the call proceed. Otherwise the hook fails the call the library's own way with `error`. */
export type Verdict = undefined | { readonly error: Error };

export type SinkEvent = SqlEvent | ExecEvent | FsEvent | HttpOutEvent | CodeEvent | ResponseSinkEvent | ConfigEvent;
export type SinkKind = SinkEvent['kind'];

export const SINK_KINDS: readonly SinkKind[] = ['sql', 'exec', 'fs', 'http.out', 'code', ...RESPONSE_SINK_KINDS, 'config'];
