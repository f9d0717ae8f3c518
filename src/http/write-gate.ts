// At most `limit` requests that write run at once in this process (WRITE_CONCURRENCY); the others
// wait their turn, in order of arrival. Reads never wait here. PostgreSQL and the server share the
// machine's cores: unbounded, writers take CPU in proportion to their number and every read
// queues behind them. Twelve writers as fast as they were answered made a 7 ms read take 170 ms
// at p95 (bench/results.md, write-load); with two at a time per process, the reads took half as
// long and the writes went faster too, as fewer transactions contended for the same CPU and locks.
import type { RequestHandler } from 'express';

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Writes that may run for minutes: gated, they would hold a place that every other write needs. */
const LONG_RUNNING = new Set(['rebuildAnalytics']);

export function limitConcurrentWrites(limit: number): RequestHandler {
  let running = 0;
  const waiting: Array<() => void> = [];
  const startNext = () => {
    while (running < limit && waiting.length > 0) waiting.shift()!();
  };
  return (req, res, next) => {
    if (READS.has(req.method) || LONG_RUNNING.has(req.operation?.operationId ?? '')) {
      next();
      return;
    }
    let gone = false;
    const start = () => {
      // A client that left while waiting is skipped: its response is already closed.
      if (gone) return;
      running++;
      res.removeListener('close', leave);
      res.once('close', () => {
        running--;
        startNext();
      });
      next();
    };
    const leave = () => {
      gone = true;
    };
    res.once('close', leave);
    waiting.push(start);
    startNext();
  };
}
