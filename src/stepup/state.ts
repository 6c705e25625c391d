import { timingSafeEqual } from 'node:crypto';
import type { Config } from '../config.js';
import type { RequestContext } from '../context/request-context.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import { SPAN_STEP_UP } from '../telemetry/attributes.js';
import { stepUpAttributes, type StepUpEventName } from '../telemetry/step-up.js';
import { log, errorMessage } from '../log.js';
import { identify, sessionMaterial, type Identity } from './identity.js';
import { StoreUnavailableError, type StepUpStore } from './store.js';
import type { TokenSigner } from './tokens.js';
import type { SecretBox } from './secret-box.js';

/** Grants travel in this header (comma-separated for several scopes) or in `sg_grant.<scope>` cookies. */
export const GRANT_HEADER = 'stepguard-grant';
export const GRANT_COOKIE_PREFIX = 'sg_grant.';
export const DEFAULT_ACR = 'urn:stepguard:acr:otp';
const MAX_CACHED_USERS = 10_000;
const IDENTITY = Symbol('stepguard.identity');
const BINDING = Symbol('stepguard.binding');
const MATERIAL = Symbol('stepguard.session-material');

export interface StepUpOptions {
  readonly config: Config;
  readonly signer: TokenSigner;
  readonly telemetry: Telemetry;
  /** Opened on first use, so an app that never steps up gets no store directory or key file. */
  readonly open: () => { store: StepUpStore; box: SecretBox };
}

/**
 * What the sink-side gate, the verification endpoint and the lockout share: settings, the lazily opened
 * store, who the request is (identity, session binding — computed once per request), the known client
 * addresses cache, and the lifecycle telemetry.
 */
export class StepUpState {
  readonly settings: Config['stepUp'];
  private readonly knownAddresses = new Map<string, Set<string>>();
  private opened: { store: StepUpStore; box: SecretBox } | undefined;
  /** After a successful verification: an extra cookie to set (adaptive step-up's device cookie). */
  onVerified: ((ctx: RequestContext, user: string) => Promise<string | undefined>) | undefined;

  constructor(readonly options: StepUpOptions) {
    this.settings = options.config.stepUp;
  }

  get signer(): TokenSigner {
    return this.options.signer;
  }

  get verifyPath(): string {
    return this.settings.verifyPath;
  }

  /** The store and the secret box; throws StoreUnavailableError when they cannot be opened. */
  resources(): { store: StepUpStore; box: SecretBox } {
    if (!this.opened) {
      try {
        this.opened = this.options.open();
      } catch (error) {
        if (error instanceof StoreUnavailableError) throw error;
        throw new StoreUnavailableError(`stepguard: the step-up store cannot be opened: ${errorMessage(error)}`, { cause: error });
      }
    }
    return this.opened;
  }

  get store(): StepUpStore {
    return this.resources().store;
  }

  async close(): Promise<void> {
    await this.opened?.store.close();
  }

  identityOf(ctx: RequestContext): Identity | undefined {
    if (!ctx.slots.has(IDENTITY)) ctx.slots.set(IDENTITY, identify(ctx.req, this.options.config.identify));
    return ctx.slots.get(IDENTITY) as Identity | undefined;
  }

  userIdOf(ctx: RequestContext): string | undefined {
    return this.identityOf(ctx)?.userId;
  }

  bindingOf(ctx: RequestContext): string {
    let binding = ctx.slots.get(BINDING) as string | undefined;
    if (binding === undefined) {
      binding = this.options.signer.bindingHash(this.materialOf(ctx));
      ctx.slots.set(BINDING, binding);
    }
    return binding;
  }

  /**
   * The session a request belongs to, for per-session risk state: undefined when it carries no session at all
   * (no Authorization header, no cookie) — every cookie-less client would otherwise share one "session".
   */
  sessionOf(ctx: RequestContext): string | undefined {
    return this.materialOf(ctx) === '' ? undefined : this.bindingOf(ctx);
  }

  private materialOf(ctx: RequestContext): string {
    let material = ctx.slots.get(MATERIAL) as string | undefined;
    if (material === undefined) {
      material = sessionMaterial(ctx.req, this.settings.sessionCookies, GRANT_COOKIE_PREFIX);
      ctx.slots.set(MATERIAL, material);
    }
    return material;
  }

  /** Synchronous, from a cache; `undefined` when the user or address is unknown. */
  isNewClientAddress(ctx: RequestContext): boolean | undefined {
    const user = this.userIdOf(ctx);
    const address = ctx.clientAddress;
    if (!user || !address) return undefined;
    const known = this.knownAddresses.get(user);
    if (known) return !known.has(address);
    // Not cached yet: load it for the next request and, meanwhile, treat the address as new (fail safe).
    Promise.resolve()
      .then(() => this.store.knownAddresses(user))
      .then(
        (list) => this.rememberAddresses(user, list),
        () => undefined,
      );
    return true;
  }

  /** After a verification: the address is known from now on (in the store and, if cached, here). */
  async addKnownAddress(user: string, address: string): Promise<void> {
    await this.store.addKnownAddress(user, address);
    if (this.knownAddresses.has(user)) this.rememberAddresses(user, [address]);
  }

  private rememberAddresses(user: string, list: readonly string[]): void {
    if (this.knownAddresses.size >= MAX_CACHED_USERS) this.knownAddresses.delete(this.knownAddresses.keys().next().value as string);
    const set = this.knownAddresses.get(user) ?? new Set<string>();
    for (const a of list) set.add(a);
    this.knownAddresses.set(user, set);
  }

  /** Step-up lifecycle as telemetry. Never carries a code, a secret, a challenge or a grant. */
  event(ctx: RequestContext, name: StepUpEventName, rule: string | undefined, extra: { reason?: string; user?: string }): void {
    const user = extra.user ?? (ctx.urlPath === this.verifyPath ? undefined : this.userIdOf(ctx));
    const attributes = stepUpAttributes(name, rule, extra.reason, user, { method: ctx.method, urlPath: ctx.urlPath, clientAddress: ctx.clientAddress });
    const failed = name === 'failed' || name === 'locked_out' || name === 'unavailable' || name === 'refused';
    this.options.telemetry.span(SPAN_STEP_UP, attributes, failed ? { message: name } : undefined);
    if (this.options.config.logFindings && name !== 'grant_used') {
      log.info(`step-up ${name}${rule ? ` rule=${rule}` : ''}${user ? ` user=${user}` : ''}${extra.reason ? ` reason=${extra.reason}` : ''}`);
    }
  }
}

/** Constant-time comparison of two strings (session bindings). */
export function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
