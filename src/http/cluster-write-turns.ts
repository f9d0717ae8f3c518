// The write gate's turns across a cluster (WORKERS > 1). The primary keeps one WriteTurns for all
// server processes; each one asks it for a write's turn and says when its reads start and stop.
// Kept per process, a process knew only its own reads: a reader's connection stays with one
// process, so the other one ran its writes at full speed beside every read, on the same cores.
// Each message is small and local (node:cluster's IPC channel); a process says only when it
// starts or stops reading at all, not once per read.
import cluster, { type Worker } from 'node:cluster';
import { WriteTurns, type Turns } from './write-gate.js';

type Message =
  | { type: 'write-turns:reading'; reading: boolean }
  | { type: 'write-turns:take'; id: number }
  | { type: 'write-turns:end'; id: number }
  | { type: 'write-turns:go'; id: number };

const isTurnsMessage = (message: unknown): message is Message =>
  typeof message === 'object' &&
  message !== null &&
  typeof (message as { type?: unknown }).type === 'string' &&
  (message as { type: string }).type.startsWith('write-turns:');

/** In the primary: keeps the turns of every worker's writes, `limit` at once in all. */
export function serveClusterWriteTurns(limit: number): void {
  const turns = new WriteTurns(limit);
  const ends = new Map<Worker, Map<number, () => void>>();
  const reading = new Set<Worker>();
  cluster.on('message', (worker, message: unknown) => {
    if (!isTurnsMessage(message)) return;
    let mine = ends.get(worker);
    if (!mine) ends.set(worker, (mine = new Map<number, () => void>()));
    switch (message.type) {
      case 'write-turns:reading':
        if (message.reading && !reading.has(worker)) {
          reading.add(worker);
          turns.readStarted();
        } else if (!message.reading && reading.delete(worker)) {
          turns.readEnded();
        }
        break;
      case 'write-turns:take': {
        const { id } = message;
        mine.set(
          id,
          turns.take(() => {
            if (worker.isConnected()) worker.send({ type: 'write-turns:go', id } satisfies Message);
          }),
        );
        break;
      }
      case 'write-turns:end':
        mine.get(message.id)?.();
        mine.delete(message.id);
        break;
    }
  });
  // A worker that dies gives back its turns and stops reading.
  cluster.on('exit', (worker) => {
    for (const end of ends.get(worker)?.values() ?? []) end();
    ends.delete(worker);
    if (reading.delete(worker)) turns.readEnded();
  });
}

/** In a worker: its writes take their turns from the primary, and it says when it reads. */
export function clusterWriteTurns(): Turns {
  let reads = 0;
  let nextId = 0;
  const waiting = new Map<number, () => void>();
  const send = (message: Message) => process.send!(message);
  process.on('message', (message: unknown) => {
    if (!isTurnsMessage(message) || message.type !== 'write-turns:go') return;
    const start = waiting.get(message.id);
    waiting.delete(message.id);
    start?.();
  });
  return {
    readStarted() {
      if (reads++ === 0) send({ type: 'write-turns:reading', reading: true });
    },
    readEnded() {
      if (--reads === 0) send({ type: 'write-turns:reading', reading: false });
    },
    take(start) {
      const id = ++nextId;
      waiting.set(id, start);
      send({ type: 'write-turns:take', id });
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        // Not started yet: its turn, when it comes, is given back at once.
        waiting.delete(id);
        send({ type: 'write-turns:end', id });
      };
    },
  };
}
