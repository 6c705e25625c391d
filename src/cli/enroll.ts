/**
 * `stepguard enroll <user> [--replace | --recovery-codes] [--store-dir DIR] [--redis URL] [--issuer NAME]`
 *
 * Opens the store the agent would use (STEPGUARD_REDIS_URL → Redis, else the embedded store in STEPGUARD_STORE_DIR
 * or `.stepguard` under the working directory; the flags override), enrolls a new TOTP factor and prints the
 * `otpauth://` URI, a terminal QR code and the base32 secret for manual entry.
 *
 * Exit codes: 0 enrolled, 1 already enrolled (without --replace) or the store/key failed, 2 usage error.
 */
import QRCode from 'qrcode';
import { errorMessage } from '../log.js';
import { AlreadyEnrolledError, enrollUser } from '../stepup/enrollment.js';
import { issueRecoveryCodes } from '../stepup/recovery-codes.js';
import { SecretBox } from '../stepup/secret-box.js';
import { resolveStoreSettings, secretKeyFile, type StepUpStore, type StoreSettings } from '../stepup/store.js';
import { openStore } from '../stepup/store-factory.js';

export const ENROLL_USAGE = `Usage: stepguard enroll <user> [--replace] [--store-dir DIR] [--redis URL] [--issuer NAME]

Enrolls <user> for TOTP step-up authentication and prints the otpauth:// URI, a QR code
to scan with an authenticator app, and the secret for manual entry.

  --replace        replace an existing factor (the old codes stop working)
  --store-dir DIR  embedded store directory (default: $STEPGUARD_STORE_DIR or ./.stepguard)
  --redis URL      use the Redis store (default: $STEPGUARD_REDIS_URL)
  --issuer NAME    name shown in the authenticator app (default: $STEPGUARD_ISSUER or "stepguard")
`;

interface EnrollArgs {
  user: string;
  replace: boolean;
  recoveryCodes: boolean;
  storeDir?: string;
  redisUrl?: string;
  issuer?: string;
}

/** `argv`: the arguments after the `enroll` word (a leading `enroll` is tolerated). */
export async function enrollCommand(argv: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): Promise<number> {
  const print = (text: string) => {
    out.write(text.endsWith('\n') ? text : text + '\n');
  };
  const parsed = parseArgs(argv);
  if (parsed === 'help') {
    print(ENROLL_USAGE);
    return 0;
  }
  if (typeof parsed === 'string') {
    print(`stepguard enroll: ${parsed}\n\n${ENROLL_USAGE}`);
    return 2;
  }

  let settings: StoreSettings;
  try {
    settings = resolveStoreSettings(env, process.cwd(), { redisUrl: parsed.redisUrl, storeDir: parsed.storeDir });
  } catch (error) {
    print(`stepguard enroll: ${errorMessage(error)}`);
    return 2;
  }
  const issuer = parsed.issuer ?? nonEmpty(env.STEPGUARD_ISSUER) ?? 'stepguard';

  let box: SecretBox;
  try {
    const keyFile = secretKeyFile(settings.storeDir);
    const { box: opened, source } = SecretBox.fromSecret(nonEmpty(env.STEPGUARD_SECRET), keyFile);
    box = opened;
    if (source !== 'env') {
      print(
        `warning: STEPGUARD_SECRET is not set; the secret is encrypted with the key in ${keyFile}` +
          (source === 'keyfile-created' ? ' (just created)' : '') +
          '. Set STEPGUARD_SECRET in production' +
          (settings.redisUrl !== undefined || settings.redisCluster !== undefined ? ': with Redis, every instance must be able to decrypt it.' : '.'),
      );
    }
  } catch (error) {
    print(`stepguard enroll: cannot set up secret encryption: ${errorMessage(error)}`);
    return 1;
  }

  let store: StepUpStore;
  try {
    store = await openStore(settings);
  } catch (error) {
    print(`stepguard enroll: cannot open the step-up store: ${errorMessage(error)}`);
    return 1;
  }

  const printCodes = (codes: readonly string[]) => {
    print('Recovery codes (each works once, for a verification that accepts them; shown only now, stored hashed):');
    for (const code of codes) print(`  ${code}`);
  };
  try {
    if (parsed.recoveryCodes) {
      const codes = await issueRecoveryCodes(store, box, parsed.user);
      print(`Issued ${codes.length} new recovery codes for ${JSON.stringify(parsed.user)} (${describeStore(settings)}); the previous ones no longer work.`);
      printCodes(codes);
      return 0;
    }
    const { secret, uri } = await enrollUser(store, box, parsed.user, issuer, { replace: parsed.replace });
    const qr = await QRCode.toString(uri, { type: 'terminal', small: true });
    print(`Enrolled ${JSON.stringify(parsed.user)} for TOTP step-up (${describeStore(settings)}).`);
    print('');
    print('Scan this QR code with an authenticator app:');
    print(qr);
    print(`otpauth URI: ${uri}`);
    print(`Secret (manual entry, base32): ${secret}`);
    print('');
    print('Keep this secret private; it is shown only once. It is stored encrypted.');
    if ((await store.recoveryCodesLeft(parsed.user)) === 0) {
      print('');
      printCodes(await issueRecoveryCodes(store, box, parsed.user));
    }
    return 0;
  } catch (error) {
    if (error instanceof AlreadyEnrolledError) {
      print(`stepguard enroll: ${JSON.stringify(parsed.user)} is already enrolled. Use --replace to enroll a new authenticator (the old one stops working).`);
      return 1;
    }
    print(`stepguard enroll: ${errorMessage(error)}`);
    return 1;
  } finally {
    await store.close().catch(() => undefined);
  }
}

function parseArgs(argv: readonly string[]): EnrollArgs | 'help' | string {
  const positionals: string[] = [];
  let replace = false;
  let recoveryCodes = false;
  const values: { storeDir?: string; redisUrl?: string; issuer?: string } = {};
  const valueFlags: Record<string, keyof typeof values> = { '--store-dir': 'storeDir', '--redis': 'redisUrl', '--issuer': 'issuer' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--help' || arg === '-h') return 'help';
    if (arg === '--replace') {
      replace = true;
      continue;
    }
    if (arg === '--recovery-codes') {
      recoveryCodes = true;
      continue;
    }
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg : arg.slice(0, eq);
      const field = valueFlags[name];
      if (field === undefined) return `unknown option ${name}`;
      let value: string | undefined;
      if (eq !== -1) value = arg.slice(eq + 1);
      else {
        value = argv[i + 1];
        i++;
      }
      if (value === undefined || value === '' || (eq === -1 && value.startsWith('--'))) return `${name} needs a value`;
      values[field] = value;
      continue;
    }
    positionals.push(arg);
  }
  if (positionals.length === 2 && positionals[0] === 'enroll') positionals.shift();
  if (positionals.length === 0) return 'missing <user>';
  if (positionals.length > 1) return `unexpected argument ${JSON.stringify(positionals[1])}`;
  const user = positionals[0] as string;
  if (user.trim() === '' || user.length > 256 || /[\u0000-\u001f\u007f]/.test(user)) return 'invalid <user>';
  return { user, replace, recoveryCodes, ...values };
}

function describeStore(settings: StoreSettings): string {
  if (settings.redisCluster !== undefined) return `Redis Cluster at ${settings.redisCluster.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  if (settings.redisUrl === undefined) return `embedded store in ${settings.storeDir}`;
  try {
    const u = new URL(settings.redisUrl);
    return `Redis at ${u.hostname}:${u.port || '6379'}`;
  } catch {
    return 'Redis';
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
