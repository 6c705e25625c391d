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

/**
 * An attack claim that an input names the program of a command is dropped when that word is the app's own
 * text rather than the request's:
 * - the input is a URL path segment (a `/ping` route running `ping`) or a parameter name (`?ping=host`):
 *   routes and forms name what they do. A router's parameter (`params`: `/run/:prog`) stays evidence;
 * - the same value also occurs in the command as data: the app wrote the program and echoes the value back
 *   (`echo echo`). Only an app that writes one request value twice lets that through, and then only to run
 *   a program with its own name as an argument.
 */
export function isProgramCoincidence(input: UserInput, alsoData: boolean): boolean {
  return input.source === 'path' || input.isKey === true || alsoData;
}
