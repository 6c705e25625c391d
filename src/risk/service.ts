import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { RequestContext } from '../context/request-context.js';
import type { SinkEvent } from '../events.js';
import type { Finding } from '../detectors/types.js';
import type { Decision } from '../rules/engine.js';
import type { PolicyRule, RuleSet } from '../rules/types.js';
import { clientAddress } from '../context/client-address.js';
import { errorMessage, warnOnce } from '../log.js';
import { deviceCookie, deviceIdFrom, DEVICE_MAX_AGE_SECONDS, MAX_DEVICES_PER_USER, newDeviceId, type Mac } from './device.js';
import { planFor, type RiskPlan } from './plan.js';
import { KEY, subjectTag, type FlagRecord, type RiskBatch, type RiskOp, type RiskOpResult, type RiskStore } from './store.js';
import { parseFlag } from './flag-record.js';
import type { RiskFacts, Subject } from './types.js';

/** Who the request is, as the step-up subsystem knows it. */
export interface RiskIdentity {
  /** The user as far as the request shows it on arrival (before the app's middleware); not cached. */
  userOnArrival(req: IncomingMessage): string | undefined;
  /** The user at the sink (after the app's authentication ran). */
  userOf(ctx: RequestContext): string | undefined;
  /** The session binding; undefined for a request without any session (no cookie, no Authorization). */
  bindingOf(ctx: RequestContext): string | undefined;
  mac: Mac;
  isNewClientAddress(ctx: RequestContext): boolean | undefined;
}

export interface RiskServiceOptions {
  /** Opened on first use: an app whose rules use no signal never connects. */
  readonly store: () => RiskStore;
  readonly who: RiskIdentity;
  readonly rules: () => RuleSet;
  /** `STEPGUARD_APP_VERSION`, default the app's package.json version: a new version clears vulnerable routes. */
  readonly appVersion: string;
  readonly blocking: () => boolean;
  readonly onFlag?: (record: FlagRecord, ctx: RequestContext) => void;
  readonly now?: () => number;
}

interface Snapshot {
  status: 'pending' | 'ready' | 'unavailable';
  /** The user the user-subject facts were loaded for. */
  user: string | undefined;
  readonly values: Map<string, RiskOpResult>;
  readonly at: number;
}

const SNAPSHOT = Symbol('stepguard.risk.snapshot');
const FLAG_TTL_MS = 30 * 86_400_000;
const SESSION_USER_TTL_MS = 86_400_000;
const MAX_REMEMBERED = 10_000;
const VULN_RECORD_EVERY_MS = 10_000;

/**
 * Adaptive step-up at run time. On arrival of a request that some adaptive rule may concern (method and path
 * pre-filter), the facts its signals need are loaded in one round trip (one script per subject, pipelined) and
 * the request is dispatched once they are in; the sink then decides synchronously from them. After the
 * decision, what happened is recorded (calls, attacks, vulnerabilities, flags) without holding the request.
 */
export class RiskService {
  private readonly now: () => number;
  private readonly mappedSessions = new Set<string>();
  private readonly vulnRecorded = new Map<string, number>();

  constructor(private readonly options: RiskServiceOptions) {
    this.now = options.now ?? Date.now;
  }

  private opened: RiskStore | undefined;

  get store(): RiskStore {
    return (this.opened ??= this.options.store());
  }

  /** Called as a request arrives; a promise when the request must wait for its facts (never rejects). */
  begin(ctx: RequestContext): Promise<void> | undefined {
    const ruleSet = this.options.rules();
    const plan = planFor(ruleSet);
    if (ruleSet.login && plan.loginTtl > 0) this.watchLogin(ctx, ruleSet, plan);
    if (plan.rules.length === 0) return undefined;
    this.rememberSessionUser(ctx);
    const candidates = plan.rules.filter((r) => mayConcern(r, ctx));
    if (candidates.length === 0) return undefined;
    const snapshot: Snapshot = { status: 'pending', user: undefined, values: new Map(), at: this.now() };
    ctx.slots.set(SNAPSHOT, snapshot);
    return this.load(ctx, snapshot, candidates).then(
      () => {
        snapshot.status = 'ready';
      },
      (error: unknown) => {
        snapshot.status = 'unavailable';
        warnOnce('risk:load', `risk signals could not be loaded (${errorMessage(error)}); operations that need them fail closed (503)`);
      },
    );
  }

  /** The facts for the rules at the sink: synchronous, from what `begin` loaded. */
  facts(ctx: RequestContext): RiskFacts {
    const snap = ctx.slots.get(SNAPSHOT) as Snapshot | undefined;
    const ready = snap?.status === 'ready';
    const userReady = (): boolean => ready && snap!.user === this.options.who.userOf(ctx);
    const num = (key: string, ok: boolean): number | undefined => (ok ? Number(snap!.values.get(key) ?? 0) : undefined);
    const subjectOk = (per: Subject | 'account'): boolean => (per === 'user' || per === 'account' ? userReady() : ready);
    return {
      newDevice: () => {
        if (!userReady()) return undefined;
        if (snap!.user === undefined) return true;
        return snap!.values.get('dev') !== 1;
      },
      newClientAddress: () => this.options.who.isNewClientAddress(ctx),
      clientAddresses: (w) => num(`addr:${w}`, userReady()),
      frequency: (ruleId, per, w) => num(`freq:${ruleId}:${per}:${w}`, subjectOk(per)),
      failedLogins: (per, w) => (subjectOk(per) ? { count: num(`lf:${per}:${w}`, true)!, distinct: num(`lfd:${per}:${w}`, true)! } : undefined),
      recentAttacks: (per, w) => num(`atk:${per}:${w}`, subjectOk(per)),
      vulnerableRoute: (quiet) => (ready ? vulnerable(snap!.values.get('vuln'), this.options.appVersion, snap!.at - quiet * 1000) : undefined),
      flagged: () => (userReady() ? parseFlag(String(snap!.values.get('flag') ?? '')) !== undefined : undefined),
    };
  }

  /**
   * After a sink decision: records calls, attacks, vulnerabilities and flags. Returns the write (never
   * rejects) so that a refusal can be held until its attack is on record — the attacker's very next request,
   * on any instance, must see it; every other request goes on without waiting.
   */
  after(ctx: RequestContext, event: SinkEvent, findings: readonly Finding[], decision: Decision): Promise<void> | undefined {
    const plan = planFor(this.options.rules());
    const attacked = plan.attackTtl > 0 && findings.some((f) => f.kind === 'attack');
    const vulnerable = plan.vulnerabilityTtl > 0 && findings.some((f) => f.kind === 'vulnerability');
    const flags = decision.matches.some((m) => m.rule.flag);
    // Nothing to record (the common case for a finding no adaptive rule looks at): no identity, no HMAC, no write.
    if (!attacked && !vulnerable && !flags && !decision.assessed) return undefined;
    const now = this.now();
    const batches = new Batches();
    const user = this.options.who.userOf(ctx);
    const subjects = this.subjectsOf(ctx, user);
    for (const { rule } of decision.assessed ?? []) {
      for (const { condition } of rule.risk!.conditions) {
        if (condition.signal !== 'frequency') continue;
        const subject = subjects[condition.per];
        const ms = condition.windowSeconds * 1000;
        if (subject) batches.add(subject, ['add', KEY.frequency(rule.meta.id, condition.windowSeconds), unique(now), now, ms, Math.min(10_000, condition.atLeast * 2 + 10)]);
      }
    }
    if (attacked) {
      for (const subject of Object.values(subjects)) if (subject) batches.add(subject, ['add', KEY.attacks, unique(now), now, plan.attackTtl * 1000, 1000]);
    }
    if (vulnerable) this.recordVulnerability(ctx, event, plan, now, batches);
    if (flags && this.options.blocking()) {
      for (const match of decision.matches) {
        if (!match.rule.flag || !user) continue;
        const record: FlagRecord = {
          user,
          reason: match.rule.meta.title,
          rule: match.rule.meta.id,
          at: now,
          signals: match.risk?.signals.filter((s) => s.fired).map((s) => s.label) ?? [],
        };
        batches.add(subjectTag('u', user), ['set', KEY.flag, JSON.stringify(record), FLAG_TTL_MS]);
        this.options.onFlag?.(record, ctx);
      }
    }
    return this.write(batches);
  }

  /** After a successful step-up verification: the device cookie to set (the device is known from now on). */
  async deviceVerified(ctx: RequestContext, user: string): Promise<string | undefined> {
    if (!planFor(this.options.rules()).usesDevices) return undefined;
    const id = deviceIdFrom(ctx.req, user, this.options.who.mac) ?? newDeviceId();
    const now = this.now();
    await this.store.run([{ subject: subjectTag('u', user), ops: [['add', KEY.devices, id, now, DEVICE_MAX_AGE_SECONDS * 1000, MAX_DEVICES_PER_USER]] }]);
    const secure = (ctx.req.socket as { encrypted?: boolean }).encrypted === true || ctx.req.headers['x-forwarded-proto'] === 'https';
    return deviceCookie(user, id, this.options.who.mac, secure);
  }

  // ---- administration (API and CLI) ----

  async flagAccount(record: FlagRecord): Promise<void> {
    await this.store.run([{ subject: subjectTag('u', record.user), ops: [['set', KEY.flag, JSON.stringify(record), FLAG_TTL_MS]] }]);
  }

  // ---------------------------------------------------------------------------------------------------------

  private async load(ctx: RequestContext, snap: Snapshot, candidates: readonly PolicyRule[]): Promise<void> {
    const binding = this.options.who.bindingOf(ctx);
    let user = this.options.who.userOnArrival(ctx.req);
    const address = clientAddress(ctx) ?? '';
    const first = new Batches();
    const session = binding ? subjectTag('s', binding) : undefined;
    if (!user && session) first.read(session, 'session-user', ['get', 'user']);
    this.plan(ctx, snap, candidates, first, { user, session, address }, 'other');
    if (user) this.plan(ctx, snap, candidates, first, { user, session, address }, 'user');
    await this.fetch(first, snap);
    if (!user) {
      const mapped = String(snap.values.get('session-user') ?? '');
      if (mapped) {
        user = mapped;
        const second = new Batches();
        this.plan(ctx, snap, candidates, second, { user, session, address }, 'user');
        await this.fetch(second, snap);
      }
    }
    snap.user = user;
  }

  /** Adds the reads the candidates' conditions need, for user-subject facts or for the others. */
  private plan(ctx: RequestContext, snap: Snapshot, candidates: readonly PolicyRule[], b: Batches, who: { user: string | undefined; session: string | undefined; address: string }, part: 'user' | 'other'): void {
    const at = snap.at;
    const u = who.user ? subjectTag('u', who.user) : undefined;
    const a = who.address ? subjectTag('a', who.address) : undefined;
    const of = (per: Subject | 'account'): string | undefined => (per === 'user' || per === 'account' ? u : per === 'session' ? who.session : a);
    const isUser = (per: Subject | 'account'): boolean => per === 'user' || per === 'account';
    for (const rule of candidates) {
      for (const { condition: c } of rule.risk!.conditions) {
        switch (c.signal) {
          case 'new_device': {
            if (part !== 'user' || !u) break;
            const id = deviceIdFrom(ctx.req, who.user!, this.options.who.mac);
            if (id) b.read(u, 'dev', ['has', KEY.devices, id]);
            break;
          }
          case 'flagged_account':
            if (part === 'user' && u) b.read(u, 'flag', ['get', KEY.flag]);
            break;
          case 'client_addresses': {
            if (part !== 'user' || !u || !who.address) break;
            const key = KEY.addresses(c.windowSeconds);
            b.add(u, ['add', key, who.address, at, c.windowSeconds * 1000, 1000]);
            b.read(u, `addr:${c.windowSeconds}`, ['count', key, at - c.windowSeconds * 1000]);
            break;
          }
          case 'frequency': {
            const s = of(c.per);
            if (s && (part === 'user') === isUser(c.per)) b.read(s, `freq:${rule.meta.id}:${c.per}:${c.windowSeconds}`, ['count', KEY.frequency(rule.meta.id, c.windowSeconds), at - c.windowSeconds * 1000]);
            break;
          }
          case 'failed_logins': {
            const s = of(c.per);
            if (!s || (part === 'user') !== isUser(c.per)) break;
            b.read(s, `lf:${c.per}:${c.windowSeconds}`, ['count', KEY.loginFailures, at - c.windowSeconds * 1000]);
            b.read(s, `lfd:${c.per}:${c.windowSeconds}`, ['count', KEY.loginDistinct, at - c.windowSeconds * 1000]);
            break;
          }
          case 'recent_attack':
            for (const per of c.per) {
              const s = of(per);
              if (s && (part === 'user') === isUser(per)) b.read(s, `atk:${per}:${c.windowSeconds}`, ['count', KEY.attacks, at - c.windowSeconds * 1000]);
            }
            break;
          case 'vulnerable_route':
            if (part === 'other') b.read(subjectTag('r', ctx.urlPath), 'vuln', ['hgetall', KEY.vulnerabilities]);
            break;
          case 'new_client_address':
            break;
        }
      }
    }
  }

  private async fetch(b: Batches, snap: Snapshot): Promise<void> {
    const batches = b.list();
    if (batches.length === 0) return;
    const results = await this.store.run(batches);
    b.each((fact, batch, op) => snap.values.set(fact, results[batch]![op]!));
  }

  private subjectsOf(ctx: RequestContext, user: string | undefined): Record<Subject, string | undefined> {
    const binding = this.options.who.bindingOf(ctx);
    const address = clientAddress(ctx);
    return {
      user: user ? subjectTag('u', user) : undefined,
      session: binding ? subjectTag('s', binding) : undefined,
      address: address ? subjectTag('a', address) : undefined,
    };
  }

  private recordVulnerability(ctx: RequestContext, event: SinkEvent, plan: RiskPlan, now: number, b: Batches): void {
    const path = ctx.urlPath;
    const throttleKey = `${path}\0${event.op}`;
    const last = this.vulnRecorded.get(throttleKey);
    // Recorded at most every 10 s per route and operation (more often for short quiet periods): last-seen precision is all it costs.
    if (last !== undefined && now - last < Math.min(VULN_RECORD_EVERY_MS, plan.vulnerabilityTtl * 250)) return;
    remember(this.vulnRecorded, throttleKey, now);
    const ttl = plan.vulnerabilityTtl * 1000;
    const v = this.options.appVersion;
    const subject = subjectTag('r', path);
    b.add(subject, ['hsetnx', KEY.vulnerabilities, `first|${v}|${event.op}`, String(now), ttl]);
    b.add(subject, ['hset', KEY.vulnerabilities, `last|${v}|${event.op}`, String(now), ttl]);
  }

  /** Failed logins: the login route's response status decides; the account comes from the named input. */
  private watchLogin(ctx: RequestContext, ruleSet: RuleSet, plan: RiskPlan): void {
    const login = ruleSet.login!;
    const res = ctx.res;
    if (!res || !login.methods.includes((ctx.method ?? '').toUpperCase()) || !login.route.test(ctx.urlPath)) return;
    res.once('finish', () => {
      try {
        if (!login.failureStatus.includes(res.statusCode)) return;
        const account = ctx.inputs().find((i) => i.path === login.account && !i.isKey)?.value;
        const address = clientAddress(ctx);
        const now = this.now();
        const ttl = plan.loginTtl * 1000;
        const b = new Batches();
        if (account) {
          const u = subjectTag('u', account);
          b.add(u, ['add', KEY.loginFailures, unique(now), now, ttl, 1000]);
          if (address) b.add(u, ['add', KEY.loginDistinct, address, now, ttl, 1000]);
        }
        if (address) {
          const a = subjectTag('a', address);
          b.add(a, ['add', KEY.loginFailures, unique(now), now, ttl, 1000]);
          if (account) b.add(a, ['add', KEY.loginDistinct, account.slice(0, 256), now, ttl, 1000]);
        }
        this.write(b);
      } catch (error) {
        warnOnce('risk:login', `could not record a failed login: ${errorMessage(error)}`);
      }
    });
  }

  /**
   * Apps whose authentication runs as middleware show the user only after arrival. Once per session (per
   * process), the user seen at the end of a request is recorded for the session, so the next request of that
   * session can load the user's facts on arrival.
   */
  private rememberSessionUser(ctx: RequestContext): void {
    const res = ctx.res;
    if (!res) return;
    const binding = this.options.who.bindingOf(ctx);
    if (!binding) return;
    res.once('finish', () => {
      const user = this.options.who.userOf(ctx);
      if (!user) return;
      // Recorded once per session and process, and again whenever this request found no user for its session
      // (the store lost it: expired, or an outage without persistence).
      const snap = ctx.slots.get(SNAPSHOT) as Snapshot | undefined;
      const lost = snap?.status === 'ready' && snap.user === undefined;
      if (this.mappedSessions.has(binding) && !lost) return;
      if (this.mappedSessions.size >= MAX_REMEMBERED) this.mappedSessions.delete(this.mappedSessions.values().next().value as string);
      this.mappedSessions.add(binding);
      const b = new Batches();
      b.add(subjectTag('s', binding), ['set', 'user', user, SESSION_USER_TTL_MS]);
      this.write(b);
    });
  }

  private write(b: Batches): Promise<void> | undefined {
    const batches = b.list();
    if (batches.length === 0) return undefined;
    return this.store.run(batches).then(
      () => undefined,
      (error: unknown) => warnOnce('risk:write', `risk state could not be recorded (${errorMessage(error)}); signals may under-count until the store is back`),
    );
  }
}

/** Cheap pre-filter on arrival: method and URL path (a route pattern with parameters is kept). */
function mayConcern(rule: PolicyRule, ctx: RequestContext): boolean {
  const w = rule.when;
  if (w.methods && !w.methods.includes((ctx.method ?? '').toUpperCase())) return false;
  if (w.route && !w.route.test(ctx.urlPath) && !w.route.source.includes(':')) return false;
  return true;
}

function vulnerable(raw: RiskOpResult | undefined, version: string, since: number): boolean {
  if (!Array.isArray(raw)) return false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const [kind, v] = raw[i]!.split('|');
    if (kind === 'last' && v === version && Number(raw[i + 1]) >= since) return true;
  }
  return false;
}

/** Members of the sorted sets: unique across instances (a random process prefix) without a random draw per call. */
const PROCESS_TAG = randomBytes(6).toString('base64url');
let sequence = 0;
function unique(now: number): string {
  sequence = (sequence + 1) % 0x7fffffff;
  return `${now}:${PROCESS_TAG}:${sequence.toString(36)}`;
}

function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > MAX_REMEMBERED) map.delete(map.keys().next().value as string);
}

/** Operations grouped by subject (one script each); reads remember which fact they answer. */
class Batches {
  private readonly bySubject = new Map<string, { ops: RiskOp[]; facts: (string | undefined)[] }>();

  read(subject: string, fact: string, op: RiskOp): void {
    const b = this.entry(subject);
    if (b.facts.includes(fact)) return;
    b.ops.push(op);
    b.facts.push(fact);
  }

  add(subject: string, op: RiskOp): void {
    const b = this.entry(subject);
    b.ops.push(op);
    b.facts.push(undefined);
  }

  list(): RiskBatch[] {
    return [...this.bySubject].map(([subject, b]) => ({ subject, ops: b.ops }));
  }

  each(fn: (fact: string, batch: number, op: number) => void): void {
    let i = 0;
    for (const b of this.bySubject.values()) {
      b.facts.forEach((fact, j) => fact !== undefined && fn(fact, i, j));
      i++;
    }
  }

  private entry(subject: string): { ops: RiskOp[]; facts: (string | undefined)[] } {
    let b = this.bySubject.get(subject);
    if (!b) {
      b = { ops: [], facts: [] };
      this.bySubject.set(subject, b);
    }
    return b;
  }
}

