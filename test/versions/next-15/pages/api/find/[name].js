// GET /api/find/:name — a dynamic route segment (req.query.name).
import { find } from '../../../lib/find';
export default async function handler(req, res) {
  try {
    res.status(200).json({ rid: req.headers['x-rid'], rows: await find(req.query.name, req.headers['x-rid']) });
  } catch (error) {
    res.status(500).json({ error: error.message }); // the app's own error answer: the agent's 403 must win
  }
}
