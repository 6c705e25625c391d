import type { RiskFacts } from './types.js';

/**
 * Risk facts stated by hand (`rules test` examples' `signals:`, `rules explain --signal`): what the store would
 * have answered. Unstated facts are the quiet defaults (known device, no calls, no failures, no attacks).
 *
 *   new_device, new_client_address, vulnerable_route, flagged_account: true | false
 *   client_addresses: N distinct addresses in the window (this one included)
 *   frequency: N earlier calls in the window (this one not included)
 *   failed_logins: N failures in the window; failed_logins_distinct: N distinct addresses/accounts
 *   recent_attacks: N attack findings in the window (all subjects together)
 */
export const STATED_SIGNALS = [
  'new_device', 'new_client_address', 'vulnerable_route', 'flagged_account', 'client_addresses', 'frequency', 'failed_logins', 'failed_logins_distinct', 'recent_attacks',
] as const;

export function factsFromSignals(stated: Readonly<Record<string, unknown>>): RiskFacts {
  const bool = (k: string): boolean => stated[k] === true;
  const num = (k: string): number => (typeof stated[k] === 'number' ? (stated[k] as number) : 0);
  return {
    newDevice: () => bool('new_device'),
    newClientAddress: () => bool('new_client_address'),
    clientAddresses: () => num('client_addresses'),
    frequency: () => num('frequency'),
    failedLogins: () => ({ count: num('failed_logins'), distinct: num('failed_logins_distinct') }),
    recentAttacks: (per) => (per === 'user' ? num('recent_attacks') : 0),
    vulnerableRoute: () => bool('vulnerable_route'),
    flagged: () => bool('flagged_account'),
  };
}
