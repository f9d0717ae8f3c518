// Counting a whole tenant's inputs (the rebuild, the consistency check) on worker threads: the
// engine is synchronous JavaScript, so one thread counts one customer at a time while the other
// cores wait. Each thread sums what it is sent; the sums are added up at the end (exact: integers),
// handed over as numbers in one buffer per thread (strings per cell cost seconds at 500,000).
// A small tenant is counted in the calling thread: starting threads costs more than it saves.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import {
  addPackedCells,
  Buckets,
  contribute,
  type DayRows,
  Dimensions,
  MrrRangeError,
  type PackedCells,
  packCells,
  toDayRows,
} from './mrr-engine.js';
import { decodeInput } from './mrr-input.js';

export type ToCounter = { kind: 'count'; inputs: string[] } | { kind: 'cells'; cutoff: number };
type FromCounter =
  | { kind: 'counted' }
  | { kind: 'cells'; cells: PackedCells; subscriptions: number }
  | { kind: 'failed'; message: string; range: boolean };

/** Batches a thread may have queued: it never waits for the next, the caller never runs far ahead. */
const IN_FLIGHT = 2;

export interface Counter {
  /** Counts these encoded inputs (mrr_counted's text); resolves when the caller may send more. */
  count(inputs: string[]): Promise<void>;
  /** Every sum, as mrr_days rows (days before `cutoff` on their month's first day: toDayRows). */
  finish(cutoff: number): Promise<{ rows: DayRows; subscriptions: number }>;
  /**
   * Every sum as packed cells (collapsed as toDayRows does), a part per thread: added up, they
   * are the count. For a caller that compares them, with no row of strings per cell.
   */
  finishPacked(cutoff: number): Promise<{ parts: PackedCells[]; subscriptions: number }>;
  /** Stops the threads (after finish, or on failure). */
  close(): Promise<void>;
}

/** Counts in the calling thread. */
function inThread(): Counter {
  const dims = new Dimensions();
  const buckets = new Buckets({ allFromRegions: true });
  let subscriptions = 0;
  return {
    count(inputs) {
      for (const text of inputs) {
        const input = decodeInput(text);
        contribute(input, dims, buckets, 1);
        subscriptions += input.subscriptions.length;
      }
      return Promise.resolve();
    },
    finish: (cutoff) => Promise.resolve({ rows: toDayRows(buckets, dims, cutoff), subscriptions }),
    finishPacked: (cutoff) => Promise.resolve({ parts: [packCells(buckets, dims, cutoff)], subscriptions }),
    close: () => Promise.resolve(),
  };
}

/**
 * Under tsx or vitest this module is TypeScript, and so is the worker: it registers tsx's loader
 * first (a worker's --import does not apply to its own entry in Node 20).
 */
function startWorker(): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./mrr-count-worker.js', import.meta.url));
  const entry = new URL('./mrr-count-worker.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(code, { eval: true });
}

/** Counts on `threads` worker threads, each batch to the thread with the fewest queued. */
function onThreads(threads: number): Counter {
  const workers = Array.from({ length: threads }, () => {
    const worker = startWorker();
    const state = {
      worker,
      queued: 0,
      failure: undefined as Error | undefined,
      waiting: [] as Array<{ resolve: () => void; reject: (error: Error) => void }>,
      result: undefined as
        | {
            resolve: (value: { cells: PackedCells; subscriptions: number }) => void;
            reject: (error: Error) => void;
          }
        | undefined,
    };
    const fail = (error: Error) => {
      state.failure ??= error;
      for (const w of state.waiting.splice(0)) w.reject(error);
      state.result?.reject(error);
    };
    worker.on('message', (message: FromCounter) => {
      if (message.kind === 'counted') {
        state.queued--;
        state.waiting.shift()?.resolve();
      } else if (message.kind === 'cells') state.result?.resolve(message);
      else if (message.range) fail(new MrrRangeError(`counting thread: ${message.message}`));
      else fail(new Error(`counting thread: ${message.message}`));
    });
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`counting thread exited with ${code}`)));
    return state;
  });
  return {
    async count(inputs) {
      const least = workers.reduce((a, b) => (b.queued < a.queued ? b : a));
      if (least.failure) throw least.failure;
      least.queued++;
      least.worker.postMessage({ kind: 'count', inputs } satisfies ToCounter);
      if (least.queued > IN_FLIGHT)
        await new Promise<void>((resolve, reject) => least.waiting.push({ resolve, reject }));
    },
    async finishPacked(cutoff) {
      const parts = await Promise.all(
        workers.map((state) => {
          if (state.failure) return Promise.reject(state.failure);
          return new Promise<{ cells: PackedCells; subscriptions: number }>((resolve, reject) => {
            state.result = { resolve, reject };
            state.worker.postMessage({ kind: 'cells', cutoff } satisfies ToCounter);
          });
        }),
      );
      return {
        parts: parts.map((p) => p.cells),
        subscriptions: parts.reduce((sum, p) => sum + p.subscriptions, 0),
      };
    },
    async finish(cutoff) {
      const { parts, subscriptions } = await this.finishPacked(cutoff);
      const dims = new Dimensions();
      const buckets = new Buckets();
      for (const part of parts) addPackedCells(part, dims, buckets);
      return { rows: toDayRows(buckets, dims, cutoff), subscriptions };
    },
    async close() {
      for (const state of workers) state.worker.removeAllListeners('exit');
      await Promise.all(workers.map((state) => state.worker.terminate()));
    },
  };
}

/** Customers from which counting is spread over threads (about 0.3 s of counting in one). */
const THREADS_FROM = 20_000;

/**
 * A counter for about `customers` inputs: on threads (one per core, at most 4) when there are
 * enough of them and more than one core, else in this thread. `threads` forces a number (tests).
 */
export function openCounter(customers: number, threads?: number): Counter {
  const wanted = threads ?? (customers >= THREADS_FROM ? Math.min(4, availableParallelism()) : 1);
  return wanted > 1 ? onThreads(wanted) : inThread();
}
