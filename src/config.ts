import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { LogLevel } from './log.js';
import type { TrustedProxies } from './context/client-address.js';
import type { RedisClusterSettings } from './stepup/store.js';

/**
 * Configuration: defaults ← config file (STEPGUARD_CONFIG, .js/.cjs/.json) ← STEPGUARD_* env vars.
 * Every problem is collected as a `ConfigProblem` naming the source and field, never thrown: the agent
 * then runs in monitor mode (see agent.ts) so a typo can neither crash nor lock up the host app.
 */

export type Mode = 'monitor' | 'block';
export type RespondMode = 'agent' | 'app';

export interface StepUpSettings {
  /** Path of the agent-served verification endpoint. */
  readonly verifyPath: string;
  /** Where the embedded store keeps secrets and counters (survives restarts). */
  readonly storeDir: string;
  /** `redis://…` switches to the shared Redis store. */
  readonly redisUrl: string | undefined;
  /** Seed nodes of a Redis Cluster for the shared store (used when `redisUrl` is unset). */
  readonly redisCluster: RedisClusterSettings | undefined;
  /** Failed verifications allowed per user / per client address before a lockout. */
  readonly maxAttemptsPerUser: number;
  readonly maxAttemptsPerClient: number;
  /** Lockout (and attempt-window) length in seconds. */
  readonly lockoutSeconds: number;
  /** Seconds a challenge stays answerable. */
  readonly challengeTtlSeconds: number;
  /** Issuer shown in authenticator apps. */
  readonly issuer: string;
  /** Cookie names that identify a session (challenges and grants are bound to it). */
  readonly sessionCookies: readonly string[];
  /** WebAuthn relying party id (a host name); passkeys are bound to it. */
  readonly webauthnRpId: string | undefined;
  /** Origins (`https://host[:port]`) passkey ceremonies may come from. */
  readonly webauthnOrigins: readonly string[];
  /** Derive the RP id and origin from the request's Host when the two above are unset (development only). */
  readonly webauthnAllowRequestOrigin: boolean;
}

export interface Config {
  readonly enabled: boolean;
  readonly mode: Mode;
  readonly rulesFiles: readonly string[];
  readonly logLevel: LogLevel;
  readonly logFindings: boolean;
  /** `agent`: the agent answers blocked/step-up requests itself; `app`: the app renders them (see README). */
  readonly respond: RespondMode;
  readonly telemetry: boolean;
  /** Run the OTLP span exporter in a thread of its own, out of the app's isolate (README "Telemetry"). */
  readonly exportThread: boolean;
  /** Watch the user's rule files and apply edits without a restart. */
  readonly reload: boolean;
  /** Also reload on SIGHUP (off by default: a SIGHUP listener stops Node's default exit on SIGHUP). */
  readonly reloadOnSighup: boolean;
  readonly serviceName: string | undefined;
  readonly maxInputs: number;
  readonly maxInputBytes: number;
  readonly maxBodyBytes: number;
  /** A request part the agent could not judge (beyond the limits above) refuses sensitive sinks in block mode (`block`) or is only reported (`monitor`). */
  readonly onInputLimit: 'monitor' | 'block';
  /** Internal destinations the app legitimately reaches from user input (IPs, CIDR ranges, host names, `*.domain`): never an SSRF attack. */
  readonly ssrfAllow: readonly string[];
  /** Other sites the app legitimately redirects to from user input (host names, `*.domain`): never an open redirect. */
  readonly redirectAllow: readonly string[];
  /** Registry names of hooks not to install (`fs`, `vm`, …); checked against the registry at start. */
  readonly disabledHooks: readonly string[];
  /** Patch http, https, child_process, vm and crypto at start even where Node can defer them to first use. */
  readonly eagerBuiltins: boolean;
  /** Proxies whose forwarding header is believed (README "Client address behind proxies"); undefined: the socket peer only. */
  readonly trustedProxies: TrustedProxies | undefined;
  readonly stepUp: StepUpSettings;
  /** Trends: the JSON-lines findings log (off when undefined), its rotation size, and the anomaly thresholds. */
  readonly findingsFile: string | undefined;
  readonly findingsFileMaxBytes: number;
  readonly anomalyFactor: number;
  readonly anomalyWindowSeconds: number;
  readonly anomalyMinEvents: number;
  readonly anomalyUserFailures: number;
  /** Functions only a JS config file can provide. */
  readonly identify: IdentifyFunction | undefined;
  readonly configFile: string | undefined;
}

/** Returns the authenticated user's id (and session id when known) for a raw Node request. */
export type IdentifyFunction = (req: unknown) => { userId: string; sessionId?: string } | string | undefined | null;

export interface ConfigProblem {
  /** `env STEPGUARD_MODE` or `/path/stepguard.config.js: mode`. */
  readonly where: string;
  readonly message: string;
}

export const DEFAULT_CONFIG: Config = Object.freeze({
  enabled: true,
  mode: 'monitor',
  rulesFiles: [],
  logLevel: 'info',
  logFindings: true,
  respond: 'agent',
  telemetry: true,
  exportThread: true,
  reload: true,
  reloadOnSighup: false,
  serviceName: undefined,
  maxInputs: 2000,
  maxInputBytes: 1 << 20,
  maxBodyBytes: 256 * 1024,
  // Not `block`: what is left past the limits is mostly large uploads the app streams itself (README "Input limits").
  onInputLimit: 'monitor',
  ssrfAllow: Object.freeze([]),
  redirectAllow: Object.freeze([]),
  disabledHooks: Object.freeze([]),
  eagerBuiltins: false,
  trustedProxies: undefined,
  stepUp: Object.freeze({
    verifyPath: '/.well-known/stepguard/step-up',
    storeDir: '.stepguard',
    redisUrl: undefined,
    redisCluster: undefined,
    maxAttemptsPerUser: 5,
    maxAttemptsPerClient: 20,
    lockoutSeconds: 300,
    challengeTtlSeconds: 300,
    issuer: 'stepguard',
    webauthnRpId: undefined,
    webauthnOrigins: Object.freeze([]),
    webauthnAllowRequestOrigin: false,
    sessionCookies: Object.freeze(['connect.sid', 'sid', 'session', 'sessionid', 'session_id', 'koa.sess', '__session', '__Host-session']),
  }),
  findingsFile: undefined,
  findingsFileMaxBytes: 10 * 1024 * 1024,
  anomalyFactor: 3,
  anomalyWindowSeconds: 60,
  anomalyMinEvents: 5,
  anomalyUserFailures: 3,
  identify: undefined,
  configFile: undefined,
});

type Raw = Record<string, unknown>;

interface FieldSpec {
  readonly key: string;
  readonly env: string;
  readonly parse: (value: unknown) => { ok: true; value: unknown } | { ok: false; expected: string };
}

const oneOf =
  (...choices: string[]) =>
  (v: unknown) =>
    typeof v === 'string' && choices.includes(v.trim().toLowerCase())
      ? { ok: true as const, value: v.trim().toLowerCase() }
      : { ok: false as const, expected: choices.join(' | ') };

const bool = (v: unknown) => {
  if (typeof v === 'boolean') return { ok: true as const, value: v };
  if (typeof v === 'string' && /^(1|true|yes|on)$/i.test(v.trim())) return { ok: true as const, value: true };
  if (typeof v === 'string' && /^(0|false|no|off)$/i.test(v.trim())) return { ok: true as const, value: false };
  return { ok: false as const, expected: 'true | false' };
};

const positiveInt = (v: unknown) => {
  const n = typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n > 0
    ? { ok: true as const, value: n }
    : { ok: false as const, expected: 'a positive integer' };
};

/** A ratio such as an anomaly factor: a number above 1 (`2.5`). */
const factor = (v: unknown) => {
  const n = typeof v === 'string' && /^\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) && n > 1
    ? { ok: true as const, value: n }
    : { ok: false as const, expected: 'a number greater than 1 (e.g. 3)' };
};

const text = (v: unknown) =>
  typeof v === 'string' && v.trim() !== ''
    ? { ok: true as const, value: v.trim() }
    : { ok: false as const, expected: 'a non-empty string' };

const pathList = (v: unknown) => {
  if (typeof v === 'string') {
    const parts = v.split(/[,:]/).map((p) => p.trim()).filter(Boolean);
    return { ok: true as const, value: parts };
  }
  if (Array.isArray(v) && v.every((p) => typeof p === 'string')) return { ok: true as const, value: v };
  return { ok: false as const, expected: 'a path or a list of paths' };
};

const nameList = (v: unknown) => {
  const list = typeof v === 'string' ? v.split(',').map((p) => p.trim()).filter(Boolean) : v;
  return Array.isArray(list) && list.length > 0 && list.every((p) => typeof p === 'string' && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(p))
    ? { ok: true as const, value: list }
    : { ok: false as const, expected: 'a comma-separated list of cookie names' };
};

const urlPath = (v: unknown) =>
  typeof v === 'string' && v.startsWith('/') && !/[\s?#]/.test(v)
    ? { ok: true as const, value: v }
    : { ok: false as const, expected: 'a URL path starting with / (no query, no spaces)' };

// The parsers below (addresses, host names, a Redis cluster) load only when their setting is given: they are five of
// the agent's start-up files, and each file loaded at start adds path work that, summed, made V8 optimise Node's path
// code in every process (README, Benchmark results).
/* eslint-disable @typescript-eslint/no-require-imports -- kept off the start-up path (see above) */
/** SSRF allow-list entries: `10.1.2.3`, `10.0.0.0/8`, `fd00::/8`, `internal.example`, `*.svc.cluster.local` — checked by the detector's own parser. */
const destinationList = (v: unknown) => {
  const list = typeof v === 'string' ? v.split(',').map((p) => p.trim()).filter(Boolean) : v;
  const expected = 'a comma-separated list of IPs, CIDR ranges, host names or *.domain';
  if (!Array.isArray(list) || !list.every((e) => typeof e === 'string')) return { ok: false as const, expected };
  const { allowEntryProblem } = require('./detectors/ssrf-allow-list.js') as typeof import('./detectors/ssrf-allow-list.js');
  const problem = list.map((e: string) => allowEntryProblem(e)).find((p) => p !== undefined);
  return problem === undefined
    ? { ok: true as const, value: Object.freeze(list.map((e: string) => e.trim())) }
    : { ok: false as const, expected: `${expected} (${problem})` };
};

const hookNames = (v: unknown) => {
  const list = typeof v === 'string' ? v.split(',').map((n) => n.trim().toLowerCase()).filter(Boolean) : v;
  return Array.isArray(list) && list.every((n) => typeof n === 'string')
    ? { ok: true as const, value: Object.freeze(list.map((n: string) => n.trim().toLowerCase())) }
    : { ok: false as const, expected: 'a comma-separated list of hook names (see `stepguard doctor`)' };
};

const redisUrl = (v: unknown) =>
  typeof v === 'string' && /^rediss?:\/\//.test(v)
    ? { ok: true as const, value: v }
    : { ok: false as const, expected: 'a redis:// or rediss:// URL' };

const trustedProxies = (v: unknown) => {
  const parsed = (require('./context/client-address.js') as typeof import('./context/client-address.js')).parseTrustedProxies(v);
  return parsed.ok ? { ok: true as const, value: parsed.value } : { ok: false as const, expected: parsed.problem };
};

const redisCluster = (v: unknown) => {
  const parsed = (require('./stepup/store.js') as typeof import('./stepup/store.js')).parseRedisCluster(v);
  return parsed.ok ? { ok: true as const, value: Object.freeze(parsed.value) } : { ok: false as const, expected: parsed.problem };
};
/* eslint-enable @typescript-eslint/no-require-imports */

const HOST_NAME = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

const rpId = (v: unknown) =>
  typeof v === 'string' && HOST_NAME.test(v.trim().toLowerCase())
    ? { ok: true as const, value: v.trim().toLowerCase() }
    : { ok: false as const, expected: 'a host name without scheme or port, e.g. example.com' };

/** `https://host[:port]`, or `http://` for localhost only (browsers allow WebAuthn there without TLS). */
const originList = (v: unknown) => {
  const list = typeof v === 'string' ? v.split(',').map((p) => p.trim()).filter(Boolean) : v;
  const expected = 'a comma-separated list of origins like https://app.example.com (http:// only for localhost)';
  if (!Array.isArray(list) || list.length === 0) return { ok: false as const, expected };
  const out: string[] = [];
  for (const entry of list) {
    let url: URL;
    try {
      url = new URL(String(entry));
    } catch {
      return { ok: false as const, expected };
    }
    const local = url.hostname === 'localhost' || url.hostname.endsWith('.localhost');
    if (url.origin !== String(entry).replace(/\/$/, '') || !(url.protocol === 'https:' || (url.protocol === 'http:' && local))) {
      return { ok: false as const, expected };
    }
    out.push(url.origin);
  }
  return { ok: true as const, value: Object.freeze(out) };
};

const TOP_FIELDS: readonly FieldSpec[] = [
  { key: 'enabled', env: 'STEPGUARD_ENABLED', parse: bool },
  { key: 'mode', env: 'STEPGUARD_MODE', parse: oneOf('monitor', 'block') },
  { key: 'rulesFiles', env: 'STEPGUARD_RULES', parse: pathList },
  { key: 'logLevel', env: 'STEPGUARD_LOG_LEVEL', parse: oneOf('debug', 'info', 'warn', 'error', 'silent') },
  { key: 'logFindings', env: 'STEPGUARD_LOG_FINDINGS', parse: bool },
  { key: 'respond', env: 'STEPGUARD_RESPOND', parse: oneOf('agent', 'app') },
  { key: 'telemetry', env: 'STEPGUARD_TELEMETRY', parse: bool },
  { key: 'exportThread', env: 'STEPGUARD_EXPORT_THREAD', parse: bool },
  { key: 'reload', env: 'STEPGUARD_RELOAD', parse: bool },
  { key: 'reloadOnSighup', env: 'STEPGUARD_RELOAD_ON_SIGHUP', parse: bool },
  { key: 'serviceName', env: 'STEPGUARD_SERVICE_NAME', parse: text },
  { key: 'maxInputs', env: 'STEPGUARD_MAX_INPUTS', parse: positiveInt },
  { key: 'maxInputBytes', env: 'STEPGUARD_MAX_INPUT_BYTES', parse: positiveInt },
  { key: 'maxBodyBytes', env: 'STEPGUARD_MAX_BODY_BYTES', parse: positiveInt },
  { key: 'onInputLimit', env: 'STEPGUARD_ON_INPUT_LIMIT', parse: oneOf('monitor', 'block') },
  { key: 'ssrfAllow', env: 'STEPGUARD_SSRF_ALLOW', parse: destinationList },
  { key: 'redirectAllow', env: 'STEPGUARD_REDIRECT_ALLOW', parse: destinationList },
  { key: 'disabledHooks', env: 'STEPGUARD_DISABLED_HOOKS', parse: hookNames },
  { key: 'eagerBuiltins', env: 'STEPGUARD_EAGER_BUILTINS', parse: bool },
  { key: 'trustedProxies', env: 'STEPGUARD_TRUSTED_PROXIES', parse: trustedProxies },
  { key: 'trustedProxyHeader', env: 'STEPGUARD_TRUSTED_PROXY_HEADER', parse: oneOf('x-forwarded-for', 'forwarded') },
  { key: 'findingsFile', env: 'STEPGUARD_FINDINGS_FILE', parse: text },
  { key: 'findingsFileMaxBytes', env: 'STEPGUARD_FINDINGS_FILE_MAX_BYTES', parse: positiveInt },
  { key: 'anomalyFactor', env: 'STEPGUARD_ANOMALY_FACTOR', parse: factor },
  { key: 'anomalyWindowSeconds', env: 'STEPGUARD_ANOMALY_WINDOW_SECONDS', parse: positiveInt },
  { key: 'anomalyMinEvents', env: 'STEPGUARD_ANOMALY_MIN_EVENTS', parse: positiveInt },
  { key: 'anomalyUserFailures', env: 'STEPGUARD_ANOMALY_USER_FAILURES', parse: positiveInt },
];

const STEP_UP_FIELDS: readonly FieldSpec[] = [
  { key: 'verifyPath', env: 'STEPGUARD_STEP_UP_PATH', parse: urlPath },
  { key: 'storeDir', env: 'STEPGUARD_STORE_DIR', parse: text },
  { key: 'redisUrl', env: 'STEPGUARD_REDIS_URL', parse: redisUrl },
  { key: 'redisCluster', env: 'STEPGUARD_REDIS_CLUSTER', parse: redisCluster },
  { key: 'maxAttemptsPerUser', env: 'STEPGUARD_MAX_ATTEMPTS_PER_USER', parse: positiveInt },
  { key: 'maxAttemptsPerClient', env: 'STEPGUARD_MAX_ATTEMPTS_PER_CLIENT', parse: positiveInt },
  { key: 'lockoutSeconds', env: 'STEPGUARD_LOCKOUT_SECONDS', parse: positiveInt },
  { key: 'challengeTtlSeconds', env: 'STEPGUARD_CHALLENGE_TTL_SECONDS', parse: positiveInt },
  { key: 'issuer', env: 'STEPGUARD_ISSUER', parse: text },
  { key: 'sessionCookies', env: 'STEPGUARD_SESSION_COOKIES', parse: nameList },
  { key: 'webauthnRpId', env: 'STEPGUARD_WEBAUTHN_RP_ID', parse: rpId },
  { key: 'webauthnOrigins', env: 'STEPGUARD_WEBAUTHN_ORIGINS', parse: originList },
  { key: 'webauthnAllowRequestOrigin', env: 'STEPGUARD_WEBAUTHN_ALLOW_REQUEST_ORIGIN', parse: bool },
];

/** Passkeys need the RP id and the origins together, and every origin must be the RP id or a subdomain of it. */
function checkWebAuthn(stepUp: Raw, problems: ConfigProblem[]): void {
  const id = stepUp.webauthnRpId as string | undefined;
  const origins = stepUp.webauthnOrigins as readonly string[];
  if (id === undefined && origins.length === 0) return;
  if (id === undefined) {
    problems.push({ where: 'env STEPGUARD_WEBAUTHN_RP_ID', message: `missing: STEPGUARD_WEBAUTHN_ORIGINS is set, so set the relying party id too (the host name passkeys are bound to, e.g. ${new URL(origins[0]!).hostname})` });
    return;
  }
  if (origins.length === 0) {
    problems.push({ where: 'env STEPGUARD_WEBAUTHN_ORIGINS', message: `missing: STEPGUARD_WEBAUTHN_RP_ID is set, so list the origins the app is served from, e.g. https://${id}` });
    return;
  }
  for (const origin of origins) {
    const host = new URL(origin).hostname;
    if (host !== id && !host.endsWith(`.${id}`)) {
      problems.push({ where: 'env STEPGUARD_WEBAUTHN_ORIGINS', message: `${origin} is not on the relying party id ${id} (nor a subdomain of it): browsers refuse such passkeys; fix the origin or STEPGUARD_WEBAUTHN_RP_ID` });
    }
  }
}

const KNOWN_FILE_KEYS = new Set([...TOP_FIELDS.map((f) => f.key), 'stepUp', 'identify']);

export interface LoadedConfig {
  readonly config: Config;
  readonly problems: readonly ConfigProblem[];
}

/** Reads the config file (if any) and the environment. Never throws. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): LoadedConfig {
  const problems: ConfigProblem[] = [];
  const top: Raw = { ...DEFAULT_CONFIG };
  const stepUp: Raw = { ...DEFAULT_CONFIG.stepUp };

  const configFile = env.STEPGUARD_CONFIG ? resolve(cwd, env.STEPGUARD_CONFIG) : undefined;
  if (configFile) {
    const fileValues = readConfigFile(configFile, problems);
    if (fileValues) {
      for (const key of Object.keys(fileValues)) {
        if (!KNOWN_FILE_KEYS.has(key)) {
          problems.push({ where: `${configFile}: ${key}`, message: `unknown field; known fields: ${[...KNOWN_FILE_KEYS].join(', ')}` });
        }
      }
      applyFields(TOP_FIELDS, fileValues, top, (f) => `${configFile}: ${f.key}`, problems);
      const fileStepUp = fileValues.stepUp;
      if (fileStepUp !== undefined) {
        if (fileStepUp && typeof fileStepUp === 'object') {
          applyFields(STEP_UP_FIELDS, fileStepUp as Raw, stepUp, (f) => `${configFile}: stepUp.${f.key}`, problems);
        } else {
          problems.push({ where: `${configFile}: stepUp`, message: 'expected an object' });
        }
      }
      if (fileValues.identify !== undefined) {
        if (typeof fileValues.identify === 'function') top.identify = fileValues.identify;
        else problems.push({ where: `${configFile}: identify`, message: 'expected a function (req) => userId | { userId, sessionId }' });
      }
    }
  }

  const envValues: Raw = {};
  const envStepUp: Raw = {};
  for (const f of TOP_FIELDS) if (env[f.env] !== undefined && env[f.env] !== '') envValues[f.key] = env[f.env];
  for (const f of STEP_UP_FIELDS) if (env[f.env] !== undefined && env[f.env] !== '') envStepUp[f.key] = env[f.env];
  applyFields(TOP_FIELDS, envValues, top, (f) => `env ${f.env}`, problems);
  applyFields(STEP_UP_FIELDS, envStepUp, stepUp, (f) => `env ${f.env}`, problems);
  checkWebAuthn(stepUp, problems);

  const rulesFiles = (top.rulesFiles as string[]).map((p) => resolve(cwd, p));
  const { trustedProxyHeader, ...settings } = top;
  const proxies = top.trustedProxies as TrustedProxies | undefined;
  const config: Config = Object.freeze({
    ...(settings as unknown as Config),
    trustedProxies: proxies && typeof trustedProxyHeader === 'string' ? Object.freeze({ ...proxies, header: trustedProxyHeader as TrustedProxies['header'] }) : proxies,
    rulesFiles: Object.freeze(rulesFiles),
    findingsFile: typeof top.findingsFile === 'string' ? resolve(cwd, top.findingsFile) : undefined,
    stepUp: Object.freeze({ ...(stepUp as unknown as StepUpSettings), storeDir: resolve(cwd, stepUp.storeDir as string) }),
    configFile,
  });
  return { config, problems };
}

function applyFields(
  fields: readonly FieldSpec[],
  source: Raw,
  target: Raw,
  where: (f: FieldSpec) => string,
  problems: ConfigProblem[],
): void {
  for (const field of fields) {
    if (!(field.key in source) || source[field.key] === undefined) continue;
    const parsed = field.parse(source[field.key]);
    if (parsed.ok) target[field.key] = parsed.value;
    else
      problems.push({
        where: where(field),
        message: `expected ${parsed.expected}, got ${JSON.stringify(source[field.key])}`,
      });
  }
}

function readConfigFile(file: string, problems: ConfigProblem[]): Raw | undefined {
  if (!existsSync(file)) {
    problems.push({ where: `env STEPGUARD_CONFIG`, message: `file not found: ${file}` });
    return undefined;
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- config files are CommonJS or JSON by contract
    const loaded: unknown = require(file);
    const value = (loaded && typeof loaded === 'object' && 'default' in loaded ? (loaded as Raw).default : loaded) as unknown;
    if (!value || typeof value !== 'object' || Array.isArray(value)) {
      problems.push({ where: file, message: 'must export an object (module.exports = { mode: "block", ... })' });
      return undefined;
    }
    return value as Raw;
  } catch (error) {
    problems.push({ where: file, message: `cannot be loaded: ${error instanceof Error ? error.message : String(error)}` });
    return undefined;
  }
}
