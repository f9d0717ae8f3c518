// A worker thread of mrr-count-pool.ts: counts the encoded inputs it is sent into its own sums,
// and hands them over as mrr_days rows when asked.
import { parentPort } from 'node:worker_threads';
import { Buckets, contribute, Dimensions, toDayRows } from './mrr-engine.js';
import { decodeInput } from './mrr-input.js';
import type { ToCounter } from './mrr-count-pool.js';

const port = parentPort!;
const dims = new Dimensions();
const buckets = new Buckets({ allFromRegions: true });
let subscriptions = 0;

port.on('message', (message: ToCounter) => {
  try {
    if (message.kind === 'count') {
      for (const text of message.inputs) {
        const input = decodeInput(text);
        contribute(input, dims, buckets, 1);
        subscriptions += input.subscriptions.length;
      }
      port.postMessage({ kind: 'counted' });
    } else port.postMessage({ kind: 'rows', rows: toDayRows(buckets, dims, message.cutoff), subscriptions });
  } catch (error) {
    port.postMessage({ kind: 'failed', message: error instanceof Error ? error.message : String(error) });
  }
});
