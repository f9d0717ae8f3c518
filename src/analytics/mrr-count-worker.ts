// A worker thread of mrr-count-pool.ts: counts the encoded inputs it is sent into its own sums,
// and hands them over packed (packCells: one transferred buffer) when asked.
import { parentPort } from 'node:worker_threads';
import { Buckets, contribute, Dimensions, MrrRangeError, packCells } from './mrr-engine.js';
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
    } else {
      const cells = packCells(buckets, dims, message.cutoff);
      port.postMessage({ kind: 'cells', cells, subscriptions }, [cells.cells.buffer as ArrayBuffer]);
    }
  } catch (error) {
    port.postMessage({
      kind: 'failed',
      message: error instanceof Error ? error.message : String(error),
      // An error crosses as its message: the pool makes an MrrRangeError again from this.
      range: error instanceof MrrRangeError,
    });
  }
});
