/**
 * The one suite every SQL driver hook runs (pg, mysql2, mysql, postgres), against a real database, for every
 * supported copy of the driver (the root devDependency and the pinned old versions in test/versions/).
 *
 * What is the same for all four lives here: starting the agent in the test process, the request wrapper,
 * the checks that the driver's entry points are wrapped transparently, the "same behaviour outside and
 * inside a request" comparison, the refusal harness (the refused statement never reaches the server's own
 * statement log, and the connection or pool still serves the next statement) and the `SinkEvent` each call
 * hands to the agent. A driver file is an adapter: how to open and close its connections, its call forms
 * with what each must show, its refusal shapes, and its driver-only tests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqlEvent } from '../../src/events.js';
import { resetMysql, resetPg, StatementLog } from '../helpers/db.js';
import { requireMysql, requirePostgres } from '../helpers/services.js';
import { startAgentInProcess } from '../helpers/agent.js';
import { recordSinkEvents, type SinkEventRecorder } from '../helpers/sink-events.js';
import { ATTACK, BENIGN, kindOf, markers, within } from '../helpers/observe.js';

export interface DriverCopy {
  readonly label: string;
  readonly dir: string;
  readonly version: string;
  readonly root: boolean;
}

/** A call form, run once outside any request and once inside one with benign input. */
export interface Form<F> {
  readonly form: string;
  readonly run: (fx: F) => Promise<unknown>;
  /** What the run outside a request must show (`toMatchObject`, or `toEqual` for an `exact` driver). */
  readonly expected: unknown;
}

/** The refusal harness: runs `refuse` inside an attack request, then the sentinel; returns what `refuse` resolved to. */
export type Refused = <T>(refuse: (sql: string, tag: string) => Promise<T>, sentinel?: (sql: string) => Promise<unknown>) => Promise<T>;

export interface Refusal<F> {
  readonly name: string;
  /** `asRequest` is for refusals that need their own sentinel (a pool that must still hand out its connection). */
  readonly run: (fx: F, refused: Refused, asRequest: <R>(q: string, fn: () => R) => R) => Promise<void>;
}

/** One call and the events the hook hands to `inspect` for it (in a request whose input is `input`). */
export interface EventCase<F> {
  readonly call: string;
  readonly input?: string;
  readonly run: (fx: F) => Promise<unknown>;
  readonly expected: readonly SqlEvent[];
}

export interface SuiteContext<F> {
  /** The copy's fixture (connections), once `beforeAll` has opened it. */
  fx(): F;
  asRequest<R>(q: string, fn: () => R): R;
  refused: Refused;
}

export interface SqlDriverSpec<F> {
  readonly driver: string;
  readonly db: 'pg' | 'mysql';
  readonly copies: readonly DriverCopy[];
  open(copy: DriverCopy): Promise<F> | F;
  close(fx: F): Promise<unknown>;
  /** Entry points that must be wrapped, keeping the original's name and length. */
  readonly patchedTitle: string;
  patched(fx: F, copy: DriverCopy): Array<[label: string, fn: unknown]>;
  forms(copy: DriverCopy): Array<Form<F>>;
  /** Compare the outside run with `toEqual` instead of `toMatchObject`. */
  readonly exact?: boolean;
  /** The statement the harness sends after a refusal on the default path; must resolve to rows `[{ ok: 1 }]`. */
  sentinel(fx: F, sql: string): Promise<unknown>;
  readonly refusalTitle: string;
  refusals(copy: DriverCopy): Array<Refusal<F>>;
  /** Refusals on a pool of one connection (run in their own describe block). */
  poolRefusals?(copy: DriverCopy): Array<Refusal<F>>;
  events(copy: DriverCopy): Array<EventCase<F>>;
  /** Driver-only tests, inside the copy's describe blocks. */
  readonly extra?: {
    unchanged?(ctx: SuiteContext<F>, copy: DriverCopy): void;
    copy?(ctx: SuiteContext<F>, copy: DriverCopy): void;
  };
}

// ---- what a caller can observe ----------------------------------------------------------------------------

/** Rows as plain data (drivers return row class instances that differ across versions). */
export const plain = (rows: unknown) => JSON.parse(JSON.stringify(rows)) as unknown;

/**
 * Calls a callback-style form; reports its return value, whether the callback came synchronously, `this`,
 * and what `describe` makes of the callback's arguments.
 */
export function viaCallback<O extends object, A extends unknown[]>(
  call: (cb: (this: unknown, ...args: A) => void) => unknown,
  describe: (...args: A) => O,
): Promise<{ returned: string; sync: boolean; self: string } & O> {
  return new Promise((resolve) => {
    let sync = true;
    let returned: unknown;
    returned = call(function (this: unknown, ...args: A) {
      const seen = { sync, self: kindOf(this), ...describe(...args) };
      setImmediate(() => resolve({ returned: kindOf(returned), ...seen }));
    });
    sync = false;
  });
}

/** The error a callback-style call delivers; fails the test if it succeeds or nothing arrives. */
export function errorOf(run: (deliver: (err: unknown) => void) => void): Promise<Error & { code?: string }> {
  return within(
    5000,
    'the refused call',
    new Promise((resolve, reject) =>
      run((err) => {
        if (err) resolve(err as Error);
        else reject(new Error('the call succeeded'));
      }),
    ),
  );
}

export const callback = <T>(run: (cb: (err: Error | null, value?: T) => void) => void) =>
  new Promise<T>((resolve, reject) => run((err, value) => (err ? reject(err) : resolve(value as T))));

// ---- the server's view -------------------------------------------------------------------------------------

/** A statement carrying the attack, tagged so the server's log can be searched for it. */
export const attackSql = (tag: string) => `SELECT id, name FROM users WHERE name = '${ATTACK}' /* ${tag} */`;
export const sentinelSql = (tag: string) => `SELECT 1 AS ok /* ${tag} */`;

/** Waits until the sentinel shows up in the server's statement log, then checks the refused statement never did. */
export async function expectNeverReachedServer(log: StatementLog, tags: ReturnType<typeof markers>): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!log.since().includes(tags.sentinel)) {
    if (Date.now() > deadline) throw new Error(`the sentinel statement ${tags.sentinel} never appeared in the ${log.db} statement log`);
    await new Promise((r) => setTimeout(r, 25));
  }
  expect(log.since()).not.toContain(tags.refused);
}

// ---- the suite ----------------------------------------------------------------------------------------------

/** The agent, request wrapper and event recorder shared by every describe block of one driver file. */
export interface Agent {
  asRequest<R>(q: string, fn: () => R): R;
  isWrapped(fn: unknown): boolean;
  originalOf<F>(fn: F): F;
  recorder: SinkEventRecorder;
}

/** Starts the agent once per file (after the service answers and the tables are fresh). */
export function useAgent(db: 'pg' | 'mysql'): Agent {
  const agent = {} as Agent;
  beforeAll(async () => {
    await (db === 'pg' ? requirePostgres() : requireMysql());
    await (db === 'pg' ? resetPg() : resetMysql());
    const { runWithContext, isWrapped, originalOf } = startAgentInProcess();
    agent.asRequest = (q, fn) => runWithContext({ query: { q } }, fn);
    agent.isWrapped = isWrapped;
    agent.originalOf = originalOf;
    agent.recorder = recordSinkEvents();
  });
  return agent;
}

export function describeSqlDriver<F>(spec: SqlDriverSpec<F>): Agent {
  const agent = useAgent(spec.db);

  describe.each(spec.copies)(`${spec.driver} $version ($label)`, (copy) => {
    let fixture: F | undefined;
    const fx = (): F => {
      if (fixture === undefined) throw new Error(`${spec.driver} ${copy.version}: the connections are not open`);
      return fixture;
    };
    const refusedOn =
      (sentinelOf: (sql: string) => Promise<unknown>): Refused =>
      async (refuse, sentinel = sentinelOf) => {
        const log = new StatementLog(spec.db);
        const tags = markers();
        log.mark();
        const seen = await within(5000, 'the refused call', agent.asRequest(ATTACK, () => refuse(attackSql(tags.refused), tags.refused)));
        expect(plain(await within(5000, 'the next statement', sentinel(sentinelSql(tags.sentinel))))).toEqual([{ ok: 1 }]);
        await expectNeverReachedServer(log, tags);
        return seen;
      };
    const ctx: SuiteContext<F> = {
      fx,
      asRequest: (q, fn) => agent.asRequest(q, fn),
      refused: refusedOn((sql) => spec.sentinel(fx(), sql)),
    };

    beforeAll(async () => {
      fixture = await spec.open(copy);
    });
    afterAll(async () => {
      if (fixture !== undefined) await spec.close(fixture);
    });

    it(spec.patchedTitle, () => {
      for (const [label, fn] of spec.patched(fx(), copy)) {
        const original = agent.originalOf(fn) as (...args: unknown[]) => unknown;
        expect(agent.isWrapped(fn), label).toBe(true);
        expect(original, label).not.toBe(fn);
        expect((fn as typeof original).name, label).toBe(original.name);
        expect((fn as typeof original).length, label).toBe(original.length);
      }
    });

    describe('unpatched behaviour is preserved, outside and inside a request with benign input', () => {
      it.each(spec.forms(copy))('$form', async ({ run, expected }) => {
        const outside = await run(fx());
        const inside = await agent.asRequest(BENIGN, () => run(fx()));
        if (spec.exact) expect(outside).toEqual(expected);
        else expect(outside).toMatchObject(expected as object);
        expect(inside).toEqual(outside);
      });
      spec.extra?.unchanged?.(ctx, copy);
    });

    describe(spec.refusalTitle, () => {
      for (const refusal of spec.refusals(copy)) it(refusal.name, () => refusal.run(fx(), ctx.refused, ctx.asRequest));
      const onPool = spec.poolRefusals?.(copy) ?? [];
      if (onPool.length > 0) {
        describe('pool with connectionLimit: 1 — after a refused statement the next one still gets the connection', () => {
          for (const refusal of onPool) it(refusal.name, () => refusal.run(fx(), ctx.refused, ctx.asRequest));
        });
      }
    });

    describe('the SinkEvent the hook hands to the agent', () => {
      it.each(spec.events(copy))('$call', async ({ run, input, expected }) => {
        const events = await agent.recorder.during(() => agent.asRequest(input ?? BENIGN, () => run(fx()).catch((error: unknown) => error)));
        expect(events).toEqual(expected);
      });
    });

    spec.extra?.copy?.(ctx, copy);
  });

  return agent;
}

/** The event a SQL hook builds for `sql`. */
export function sqlEvent(op: string, sql: string, dialect: SqlEvent['dialect'], system: SqlEvent['system']): SqlEvent {
  return { kind: 'sql', op, dialect, system, sql };
}
