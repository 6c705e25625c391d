import type { SinkEvent, Verdict } from '../events.js';
import type { RequestContext } from '../context/request-context.js';
import type { RuleMatch } from '../rules/engine.js';
import type { AgentEndpoints, StepUpGate } from '../runtime.js';
import type { StepUpRequiredError } from '../errors.js';
import type { Identity } from './identity.js';
import type { StepUpStore } from './store.js';
import type { SecretBox } from './secret-box.js';
import { StepUpSinkGate } from './gate.js';
import { VerifyEndpoint } from './endpoint.js';
import { StepUpState, type StepUpOptions } from './state.js';

export { DEFAULT_ACR, GRANT_COOKIE_PREFIX, GRANT_HEADER } from './state.js';
export type StepUpServiceOptions = StepUpOptions;

/**
 * The step-up subsystem as the runtime holds it: the sink-side gate (gate.ts), the verification endpoint
 * (endpoint.ts, with its lockout) and what they share (state.ts). Only composition lives here.
 */
export class StepUpService implements StepUpGate, AgentEndpoints {
  private readonly state: StepUpState;
  private readonly gate: StepUpSinkGate;
  private readonly endpoint: VerifyEndpoint;

  constructor(options: StepUpServiceOptions) {
    this.state = new StepUpState(options);
    this.gate = new StepUpSinkGate(this.state);
    this.endpoint = new VerifyEndpoint(this.state);
  }

  get verifyPath(): string {
    return this.state.verifyPath;
  }

  /** The shared state, for the public API's passkey and recovery-code functions (api.ts). */
  get shared(): StepUpState {
    return this.state;
  }

  /** Does this request hold a valid grant for `scope` at a tier satisfying `acrValues`? (No challenge is issued.) */
  hasGrant(ctx: RequestContext, identity: Identity, scope: string, acrValues: readonly string[]): boolean {
    return this.gate.findGrant(ctx, identity, scope, acrValues).ok;
  }

  resources(): { store: StepUpStore; box: SecretBox } {
    return this.state.resources();
  }

  close(): Promise<void> {
    return this.state.close();
  }

  identityOf(ctx: RequestContext): Identity | undefined {
    return this.state.identityOf(ctx);
  }

  bindingOf(ctx: RequestContext): string {
    return this.state.bindingOf(ctx);
  }

  /** The request's session binding, or undefined when it carries no session (no cookie, no Authorization). */
  sessionOf(ctx: RequestContext): string | undefined {
    return this.state.sessionOf(ctx);
  }

  /** HMAC under the session-binding key (device cookies). */
  mac(material: string): string {
    return this.state.signer.bindingHash(material);
  }

  set onVerified(fn: ((ctx: RequestContext, user: string) => Promise<string | undefined>) | undefined) {
    this.state.onVerified = fn;
  }

  userIdOf(ctx: RequestContext): string | undefined {
    return this.state.userIdOf(ctx);
  }

  isNewClientAddress(ctx: RequestContext): boolean | undefined {
    return this.state.isNewClientAddress(ctx);
  }

  require(ctx: RequestContext, match: RuleMatch, event: SinkEvent, incidentId: string): Verdict {
    return this.gate.require(ctx, match, event, incidentId);
  }

  demand(ctx: RequestContext, scope: string, requirement: { acrValues: readonly string[]; maxAge: number }, operation: string, incidentId: string): Verdict {
    return this.gate.demand(ctx, scope, requirement, operation, incidentId);
  }

  challenge(ctx: RequestContext, identity: Identity, scope: string, acrValues: readonly string[], maxAge: number): StepUpRequiredError {
    return this.gate.challenge(ctx, identity, scope, acrValues, maxAge);
  }

  handles(ctx: RequestContext): boolean {
    return this.endpoint.handles(ctx);
  }

  serve(ctx: RequestContext): void {
    this.endpoint.serve(ctx);
  }
}
