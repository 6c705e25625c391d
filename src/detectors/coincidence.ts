import type { UserInput } from '../events.js';

/**
 * A vulnerability report claims the app concatenated this input into the sink. Some matches are
 * coincidences instead, and the detector that found them drops them (attacks are never dropped here):
 * - a parameter name or object key: `?name=…` with `WHERE name = $1` names a column, it did not flow there;
 * - a URL path segment equal to a whole name the app wrote itself (`namesWord`: an SQL identifier, a shell
 *   word): `/users/42` and `FROM users` share a word, not a data flow.
 */
export function isCoincidence(input: UserInput, namesWord: boolean): boolean {
  return input.isKey === true || (namesWord && input.source === 'path');
}
