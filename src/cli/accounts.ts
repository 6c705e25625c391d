import { clearFlag, resolveRoute, showFlag } from '../risk/admin.js';
import type { RiskStore } from '../risk/store.js';

const HELP = `stepguard accounts — accounts flagged by adaptive rules (action \`flag\`)

  stepguard accounts list [--json]
  stepguard accounts show <user> [--json]
  stepguard accounts clear <user>
  stepguard findings resolve --route <path>     the route's vulnerability findings are resolved (vulnerable_route stops firing)

Reads the shared risk store: STEPGUARD_REDIS_URL (or --redis-url URL). The embedded store lives inside the app's
process; use the API there (require('stepguard').risk.listFlags() / clearFlag(user) / resolveRoute(path)).
`;

async function open(argv: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): Promise<RiskStore | undefined> {
  const i = argv.indexOf('--redis-url');
  const url = i !== -1 ? argv[i + 1] : env.STEPGUARD_REDIS_URL;
  if (!url) {
    out.write(`stepguard: set STEPGUARD_REDIS_URL (or --redis-url): the embedded risk store is in the app's memory only\n\n${HELP}`);
    return undefined;
  }
  const { RedisRiskStore } = await import('../risk/redis-store.js');
  return new RedisRiskStore(url);
}

export async function accountsCommand(argv: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): Promise<number> {
  const [sub, user] = argv;
  if (!sub || sub === 'help' || sub === '--help') return out.write(HELP), 0;
  if (!['list', 'show', 'clear'].includes(sub)) return out.write(`stepguard accounts: unknown subcommand "${sub}"\n\n${HELP}`), 2;
  if (sub !== 'list' && (!user || user.startsWith('--'))) return out.write(`stepguard accounts ${sub}: name the user\n`), 2;
  const store = await open(argv, env, out);
  if (!store) return 2;
  const json = argv.includes('--json');
  try {
    if (sub === 'list') {
      const flags = await store.listFlags();
      if (json) out.write(JSON.stringify(flags, null, 2) + '\n');
      else if (flags.length === 0) out.write('no flagged accounts\n');
      else for (const f of flags) out.write(`${f.user}\t${new Date(f.at).toISOString()}\t${f.rule}\t${f.reason}\t${f.signals.join(', ')}\n`);
      return 0;
    }
    if (sub === 'show') {
      const flag = await showFlag(store, user!);
      if (json) out.write(JSON.stringify(flag ?? null) + '\n');
      else out.write(flag ? `user: ${flag.user}\nflagged: ${new Date(flag.at).toISOString()}\nrule: ${flag.rule}\nreason: ${flag.reason}\nsignals: ${flag.signals.join(', ') || '(none)'}\n` : `${user} is not flagged\n`);
      return flag ? 0 : 1;
    }
    const cleared = await clearFlag(store, user!);
    out.write(cleared ? `cleared the flag of ${user}\n` : `${user} was not flagged\n`);
    return 0;
  } finally {
    await store.close();
  }
}

export async function resolveCommand(argv: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): Promise<number> {
  const i = argv.indexOf('--route');
  const route = i !== -1 ? argv[i + 1] : undefined;
  if (!route || !route.startsWith('/')) return out.write(`stepguard findings resolve: give --route /path\n\n${HELP}`), 2;
  const store = await open(argv, env, out);
  if (!store) return 2;
  try {
    const done = await resolveRoute(store, route);
    out.write(done ? `resolved the vulnerability findings of ${route}\n` : `no vulnerability recorded for ${route}\n`);
    return 0;
  } finally {
    await store.close();
  }
}
