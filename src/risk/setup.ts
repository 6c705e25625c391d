import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.js';
import type { RuleSet } from '../rules/types.js';
import type { StepUpService } from '../stepup/service.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import { identify } from '../stepup/identity.js';
import { ATTR, SPAN_FLAG } from '../telemetry/attributes.js';
import { clientAddress } from '../context/client-address.js';
import { log } from '../log.js';
import { RiskService } from './service.js';
import type { RiskStore } from './store.js';

export { usesRisk } from './uses.js';

/** `STEPGUARD_APP_VERSION`, else the `version` of package.json in the working directory, else "0". */
export function appVersion(env: NodeJS.ProcessEnv, cwd = process.cwd()): string {
  const fromEnv = env.STEPGUARD_APP_VERSION?.trim();
  if (fromEnv) return fromEnv;
  try {
    const v = (JSON.parse(readFileSync(join(cwd, 'package.json'), 'utf8')) as { version?: unknown }).version;
    return typeof v === 'string' && v !== '' ? v : '0';
  } catch {
    return '0';
  }
}

/* eslint-disable @typescript-eslint/no-require-imports -- the chosen store only: the embedded one never loads ioredis */
export function createRiskStore(redisUrl: string | undefined): RiskStore {
  if (redisUrl) {
    const { RedisRiskStore } = require('./redis-store.js') as typeof import('./redis-store.js');
    return new RedisRiskStore(redisUrl);
  }
  const { EmbeddedRiskStore } = require('./embedded-store.js') as typeof import('./embedded-store.js');
  return new EmbeddedRiskStore();
}
/* eslint-enable @typescript-eslint/no-require-imports */

export function createRisk(config: Config, env: NodeJS.ProcessEnv, stepUp: StepUpService, telemetry: Telemetry, rules: () => RuleSet): RiskService {
  const service = new RiskService({
    store: () => createRiskStore(config.stepUp.redisUrl),
    rules,
    appVersion: appVersion(env),
    blocking: () => config.mode !== 'monitor',
    who: {
      userOnArrival: (req) => identify(req, config.identify)?.userId,
      userOf: (ctx) => stepUp.userIdOf(ctx),
      bindingOf: (ctx) => stepUp.sessionOf(ctx),
      mac: (material) => stepUp.mac(material),
      isNewClientAddress: (ctx) => stepUp.isNewClientAddress(ctx),
    },
    onFlag: (record, ctx) => {
      telemetry.span(SPAN_FLAG, {
        [ATTR.USER_ID]: record.user,
        [ATTR.RULE_NAME]: record.rule,
        [ATTR.FLAG_REASON]: record.reason,
        [ATTR.RISK_SIGNALS]: [...record.signals],
        [ATTR.CLIENT_ADDRESS]: clientAddress(ctx),
      });
      if (config.logFindings) log.info(`account flagged user=${record.user} rule=${record.rule} signals=${record.signals.join(',')}`);
    },
  });
  stepUp.onVerified = (ctx, user) => service.deviceVerified(ctx, user);
  return service;
}
