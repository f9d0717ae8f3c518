// At most `limit` requests that write run at once in this process (WRITE_CONCURRENCY), and only
// one while a read is running here (reads first); the others wait their turn, in order of
// arrival. Reads never wait here. PostgreSQL and the server share the machine's cores: unbounded,
// writers take CPU in proportion to their number and every read queues behind them. Twelve
// writers as fast as they were answered made a 7 ms read take 170 ms at p95 (bench/results.md,
// write-load); with two at a time per process, the reads took half as long and the writes went
// faster too, as fewer transactions contended for the same CPU and locks. With one at a time
// while a read ran, the reads of GET /analytics and GET /metrics/mrr under those writers took p95
// 26–28 ms instead of 81–102 ms, and the writes went from about 150/s to 99/s (docs/scaling.md).
import type { RequestHandler } from 'express';

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Writes that may run for minutes: gated, they would hold a place that every other write needs. */
const LONG_RUNNING = new Set(['rebuildAnalytics']);
/** Reads that may run for minutes: they do not hold writes to one at a time meanwhile. */
const LONG_READS = new Set(['checkAnalyticsConsistency']);
/** Writes running at once while a read runs in this process, or ran in the last READ_WINDOW_MS. */
const WHILE_READING = 1;
/** A reader sends its next request soon after an answer: the writes stay few between its reads. */
const READ_WINDOW_MS = 100;

export function limitConcurrentWrites(limit: number): RequestHandler {
  let running = 0;
  let reading = 0;
  let lastRead = -Infinity;
  const waiting: Array<() => void> = [];
  const startNext = () => {
    const readsFirst = reading > 0 || performance.now() - lastRead < READ_WINDOW_MS;
    const cap = readsFirst ? Math.min(limit, WHILE_READING) : limit;
    while (running < cap && waiting.length > 0) waiting.shift()!();
  };
  return (req, res, next) => {
    const operation = req.operation?.operationId ?? '';
    if (READS.has(req.method)) {
      if (req.method !== 'OPTIONS' && !LONG_READS.has(operation)) {
        reading++;
        res.once('close', () => {
          reading--;
          lastRead = performance.now();
          startNext();
        });
      }
      next();
      return;
    }
    if (LONG_RUNNING.has(operation)) {
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
