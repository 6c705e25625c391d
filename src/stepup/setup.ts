import type { Config } from '../config.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import type { RequestContext } from '../context/request-context.js';
import type { SinkEvent, Verdict } from '../events.js';
import type { RuleMatch } from '../rules/engine.js';
import type { AgentEndpoints, StepUpGate } from '../runtime.js';
import type { StepUpService } from './service.js';
import { log, errorMessage } from '../log.js';

/**
 * Builds the step-up subsystem. The signing key comes from STEPGUARD_SECRET; without it a per-process key
 * is generated (grants then die with the process and are not shared between instances) and, when a rule
 * needs step-up, that is said loudly. The store and key file are opened on first use.
 *
 * When no rule asks for step-up and no Redis store is configured, the service (gate, endpoint, tokens, TOTP:
 * a fifth of the agent's start-up) is built at its first use instead: the verification endpoint's path test
 * runs on every request without it, and the programmatic API or a finding's user id builds it on demand.
 */
export function createStepUp(config: Config, env: NodeJS.ProcessEnv, telemetry: Telemetry, rulesNeedIt: boolean): StepUpService | undefined {
  if (rulesNeedIt || config.stepUp.redisUrl) return build(config, env, telemetry, rulesNeedIt);
  return new DeferredStepUp(config.stepUp.verifyPath, () => build(config, env, telemetry, false)) as unknown as StepUpService;
}

/* eslint-disable @typescript-eslint/no-require-imports -- the step-up modules load when step-up is first needed */
function build(config: Config, env: NodeJS.ProcessEnv, telemetry: Telemetry, rulesNeedIt: boolean): StepUpService | undefined {
  try {
    const { StepUpService } = require('./service.js') as typeof import('./service.js');
    const { TokenSigner } = require('./tokens.js') as typeof import('./tokens.js');
    const { SecretBox } = require('./secret-box.js') as typeof import('./secret-box.js');
    const { secretKeyFile } = require('./store.js') as typeof import('./store.js');
    const { createStore } = require('./store-factory.js') as typeof import('./store-factory.js');
    const { signer, generated } = TokenSigner.fromSecret(env.STEPGUARD_SECRET);
    if (generated && rulesNeedIt) {
      log.warn(
        'STEPGUARD_SECRET is not set: step-up grants are signed with a key generated for this process only. ' +
          'Grants will not survive a restart nor work across instances, and secrets at rest use a key file in ' +
          `${config.stepUp.storeDir}. Set STEPGUARD_SECRET (32+ random characters) in production.`,
      );
    }
    const service = new StepUpService({
      config,
      signer,
      telemetry,
      open: () => {
        const { storeDir, redisUrl, redisCluster } = config.stepUp;
        const store = createStore(redisUrl ? { redisUrl, storeDir } : redisCluster ? { redisCluster, storeDir } : { storeDir });
        const { box, source } = SecretBox.fromSecret(env.STEPGUARD_SECRET, secretKeyFile(storeDir));
        if (source === 'keyfile-created') log.warn(`created ${secretKeyFile(storeDir)} to encrypt TOTP secrets at rest; set STEPGUARD_SECRET instead in production`);
        return { store, box };
      },
    });
    // With Redis, connect now so the first step-up does not wait for the connection.
    if ((config.stepUp.redisUrl || config.stepUp.redisCluster) && rulesNeedIt) service.resources();
    return service;
  } catch (error) {
    log.error(`step-up is unavailable (${errorMessage(error)}); operations that need it will be refused`);
    return undefined;
  }
}
/* eslint-enable @typescript-eslint/no-require-imports */

/**
 * Stands in for the StepUpService until something needs it; every method of the service is here (the
 * programmatic API in api.ts uses the service's own), each building the service on first call.
 */
class DeferredStepUp implements StepUpGate, AgentEndpoints {
  private service: StepUpService | undefined;
  private failed = false;

  constructor(
    readonly verifyPath: string,
    private readonly make: () => StepUpService | undefined,
  ) {}

  private built(): StepUpService | undefined {
    if (!this.service && !this.failed) {
      this.service = this.make();
      this.failed = this.service === undefined;
    }
    return this.service;
  }

  private real(): StepUpService {
    const service = this.built();
    if (!service) throw new Error('stepguard step-up is unavailable (see the error logged when it was first needed)');
    return service;
  }

  /** Every request passes here: the same test as the endpoint's, without building anything. */
  handles(ctx: RequestContext): boolean {
    const url = ctx.req.url;
    return typeof url === 'string' && url.startsWith(this.verifyPath) && ctx.urlPath === this.verifyPath;
  }

  serve(ctx: RequestContext): void {
    this.real().serve(ctx);
  }

  require(ctx: RequestContext, match: RuleMatch, event: SinkEvent, incidentId: string): Verdict {
    return this.real().require(ctx, match, event, incidentId);
  }

  isNewClientAddress(ctx: RequestContext): boolean | undefined {
    return this.built()?.isNewClientAddress(ctx);
  }

  userIdOf(ctx: RequestContext): string | undefined {
    return this.built()?.userIdOf(ctx);
  }

  resources(): ReturnType<StepUpService['resources']> {
    return this.real().resources();
  }

  close(): Promise<void> {
    return this.service ? this.service.close() : Promise.resolve();
  }

  identityOf(ctx: RequestContext): ReturnType<StepUpService['identityOf']> {
    return this.real().identityOf(ctx);
  }

  demand(...args: Parameters<StepUpService['demand']>): Verdict {
    return this.real().demand(...args);
  }

  challenge(...args: Parameters<StepUpService['challenge']>): ReturnType<StepUpService['challenge']> {
    return this.real().challenge(...args);
  }
}
