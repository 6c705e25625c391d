// GET /api/find?name=…  and  POST /api/find {"name"}: req.query and req.body as Next.js parses them.
import { find } from '../../lib/find';
export default async function handler(req, res) {
  const name = req.method === 'POST' ? req.body.name : req.query.name;
  res.status(200).json({ rid: req.headers['x-rid'], rows: await find(name, req.headers['x-rid']) });
}
