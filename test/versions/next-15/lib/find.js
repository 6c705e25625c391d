// `pg` stays outside the bundle (Next.js externalises it), so the agent's hook on it applies.
const { Pool } = require('pg');
const pool = globalThis.__sgPool ?? (globalThis.__sgPool = new Pool({ connectionString: process.env.SG_PG_URL, max: Number(process.env.SG_POOL_SIZE || 3) }));
export async function find(name, rid) {
  const r = await pool.query(`SELECT id, name FROM users WHERE name = '${name}' /* rid ${rid} */`);
  return r.rows;
}
