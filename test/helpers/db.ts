/** Direct database access for tests (outside the agent): schema setup and server-side checks. */
import { readFileSync, statSync } from 'node:fs';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { MYSQL_URL, PG_URL, PG_LOG, MYSQL_LOG } from './services.js';

const USERS = [
  [1, 'alice', 'alice@example.com', 'TOPSECRET-alice'],
  [2, 'bob', 'bob@example.com', 'TOPSECRET-bob'],
  [3, 'carol', 'carol@example.com', 'TOPSECRET-carol'],
] as const;

export async function resetPg(): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query('DROP TABLE IF EXISTS users, audit');
    await client.query('CREATE TABLE users (id int primary key, name text, email text, secret text)');
    await client.query('CREATE TABLE audit (marker text)');
    for (const u of USERS) await client.query('INSERT INTO users VALUES ($1, $2, $3, $4)', [...u]);
  } finally {
    await client.end();
  }
}

export async function resetMysql(): Promise<void> {
  const conn = await mysql.createConnection({ uri: MYSQL_URL });
  try {
    await conn.query('DROP TABLE IF EXISTS users, audit');
    await conn.query('CREATE TABLE users (id int primary key, name text, email text, secret text) DEFAULT CHARSET=utf8mb4');
    await conn.query('CREATE TABLE audit (marker text) DEFAULT CHARSET=utf8mb4');
    for (const u of USERS) await conn.query('INSERT INTO users VALUES (?, ?, ?, ?)', [...u]);
  } finally {
    await conn.end();
  }
}

export async function auditMarkers(db: 'pg' | 'mysql'): Promise<string[]> {
  if (db === 'pg') {
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      return (await client.query<{ marker: string }>('SELECT marker FROM audit')).rows.map((r) => r.marker);
    } finally {
      await client.end();
    }
  }
  const conn = await mysql.createConnection({ uri: MYSQL_URL });
  try {
    const [rows] = await conn.query('SELECT marker FROM audit');
    return (rows as Array<{ marker: string }>).map((r) => r.marker);
  } finally {
    await conn.end();
  }
}

export async function clearAudit(db: 'pg' | 'mysql'): Promise<void> {
  if (db === 'pg') {
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query('DELETE FROM audit').finally(() => client.end());
    return;
  }
  const conn = await mysql.createConnection({ uri: MYSQL_URL });
  await conn.query('DELETE FROM audit').finally(() => conn.end());
}

/** The database's own statement log (log_statement=all / general_log): what the server actually received. */
export class StatementLog {
  private offset = 0;
  constructor(readonly db: 'pg' | 'mysql') {}
  private get file(): string {
    return this.db === 'pg' ? PG_LOG : MYSQL_LOG;
  }
  mark(): void {
    this.offset = statSync(this.file).size;
  }
  /** Everything the server logged since `mark()`. */
  since(): string {
    return readFileSync(this.file).subarray(this.offset).toString('utf8');
  }
}
