// At most `limit` requests that write run at once (WRITE_CONCURRENCY per server process), and only
// one while a read is running (reads first); the others wait their turn, in order of arrival.
// Reads never wait here. PostgreSQL and the server share the machine's cores: unbounded, writers
// take CPU in proportion to their number and every read queues behind them. Twelve writers as fast
// as they were answered made a 7 ms read take 170 ms at p95 (bench/results.md, write-load); with
// two at a time per process, the reads took half as long and the writes went faster too, as fewer
// transactions contended for the same CPU and locks. With one at a time while a read ran, the
// reads of GET /analytics and GET /metrics/mrr under those writers took p95 26–28 ms instead of
// 81–102 ms, and the writes went from about 150/s to 99/s (docs/scaling.md).
//
// The turns are kept in one place for every server process: in this process (WORKERS=1), or in
// the cluster's primary (http/cluster-write-turns.ts), since the reads and the writes that slow
// them share one machine whichever process serves them.
import type { RequestHandler } from 'express';

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Writes that may run for minutes: gated, they would hold a place that every other write needs. */
const LONG_RUNNING = new Set(['rebuildAnalytics']);
/**
 * Writes that the service groups into shared transactions, whose group is the unit of work: gated
 * one request at a time, a group could never hold more than a turn's few. Single usage events (a
 * group commit, at most two transactions of one key at once, services/usage.ts) go ungated; holds,
 * captures and releases (services/wallet-ops.ts) take one turn per transaction (writeTurn).
 */
const GROUPED = new Set(['createUsageEvent', 'createHold', 'captureHold', 'releaseHold']);
/** Reads that may run for minutes: they do not hold writes to one at a time meanwhile. */
const LONG_READS = new Set(['checkAnalyticsConsistency']);
/** Writes running at once while a read runs, or ran in the last READ_WINDOW_MS. */
const WHILE_READING = 1;
/** A reader sends its next request soon after an answer: the writes stay few between its reads. */
const READ_WINDOW_MS = 100;

/** Who writes when. `take` queues a write; its `start` runs at its turn. */
export interface Turns {
  readStarted(): void;
  readEnded(): void;
  /** Returns `end`: call it once the write's response closes, whether its turn came or not. */
  take(start: () => void): () => void;
}

interface Turn {
  start: () => void;
  state: 'waiting' | 'running' | 'ended';
}

/** The turns of one process's writes, or of a cluster's (kept by its primary). */
export class WriteTurns implements Turns {
  #running = 0;
  #reading = 0;
  #lastRead = -Infinity;
  readonly #waiting: Turn[] = [];

  constructor(readonly limit: number) {}

  readStarted(): void {
    this.#reading++;
  }

  readEnded(): void {
    this.#reading--;
    this.#lastRead = performance.now();
    this.#next();
  }

  take(start: () => void): () => void {
    const turn: Turn = { start, state: 'waiting' };
    this.#waiting.push(turn);
    this.#next();
    return () => {
      const wasRunning = turn.state === 'running';
      turn.state = 'ended';
      if (wasRunning) {
        this.#running--;
        this.#next();
      }
    };
  }

  #next(): void {
    const readsFirst = this.#reading > 0 || performance.now() - this.#lastRead < READ_WINDOW_MS;
    const cap = readsFirst ? Math.min(this.limit, WHILE_READING) : this.limit;
    while (this.#running < cap && this.#waiting.length > 0) {
      const turn = this.#waiting.shift()!;
      // A client that left while waiting gives its place to the next.
      if (turn.state !== 'waiting') continue;
      turn.state = 'running';
      this.#running++;
      turn.start();
    }
  }
}

/** A turn for work that is not one request (a group's transaction): resolves with its end. */
export function writeTurn(turns: Turns): Promise<() => void> {
  let end: () => void = () => {};
  return new Promise<void>((start) => {
    end = turns.take(start);
  }).then(() => end);
}

/** The gate: writes wait for their turn (`turns`, or this process's own at `limit`). */
export function limitConcurrentWrites(turns: Turns | number): RequestHandler {
  const gate = typeof turns === 'number' ? new WriteTurns(turns) : turns;
  return (req, res, next) => {
    const operation = req.operation?.operationId ?? '';
    if (READS.has(req.method)) {
      if (req.method !== 'OPTIONS' && !LONG_READS.has(operation)) {
        gate.readStarted();
        res.once('close', () => gate.readEnded());
      }
      next();
      return;
    }
    if (LONG_RUNNING.has(operation) || GROUPED.has(operation)) {
      next();
      return;
    }
    res.once(
      'close',
      gate.take(() => next()),
    );
  };
}
