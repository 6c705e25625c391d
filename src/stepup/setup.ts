import type { Config } from '../config.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import { log, errorMessage } from '../log.js';
import { StepUpService } from './service.js';
import { TokenSigner } from './tokens.js';
import { SecretBox } from './secret-box.js';
import { secretKeyFile } from './store.js';
import { createStore } from './store-factory.js';

/**
 * Builds the step-up subsystem. The signing key comes from STEPGUARD_SECRET; without it a per-process key
 * is generated (grants then die with the process and are not shared between instances) and, when a rule
 * needs step-up, that is said loudly. The store and key file are opened on first use.
 */
export function createStepUp(config: Config, env: NodeJS.ProcessEnv, telemetry: Telemetry, rulesNeedIt: boolean): StepUpService | undefined {
  try {
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
