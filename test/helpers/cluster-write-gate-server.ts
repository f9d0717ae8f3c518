// A two-worker cluster whose workers gate their writes with the primary's turns
// (src/http/cluster-write-turns.ts), for test/process/cluster-write-gate.test.ts.
// GET /read?ms= and POST /write?ms= answer after ms with the serving process and the times it
// held the request; "read started" is printed when a read begins to run. POST /write?exit=1 ends
// its process while the write holds its turn.
import express from 'express';
import cluster from 'node:cluster';
import { clusterWriteTurns, serveClusterWriteTurns } from '../../src/http/cluster-write-turns.js';
import { limitConcurrentWrites } from '../../src/http/write-gate.js';

if (cluster.isPrimary) {
  serveClusterWriteTurns(Number(process.env.WRITE_LIMIT));
  let listening = 0;
  cluster.on('listening', (_worker, address) => {
    if (++listening === 2) console.log(`listening on ${address.port}`);
  });
  cluster.fork();
  cluster.fork();
} else {
  const app = express();
  app.use(limitConcurrentWrites(clusterWriteTurns()));
  const hold: express.RequestHandler = (req, res) => {
    const started = Date.now();
    if (req.method === 'GET') console.log('read started');
    if (req.query.exit) process.exit(1);
    setTimeout(() => res.json({ pid: process.pid, started, ended: Date.now() }), Number(req.query.ms));
  };
  app.get('/read', hold);
  app.post('/write', hold);
  // Workers listening on port 0 share one port, chosen by the primary.
  app.listen(0, '127.0.0.1');
}
