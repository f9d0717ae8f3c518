// Reads first across a cluster: a read in one server process holds the writes of every process to
// one at a time, as the writes of any process slow a read on the same machine
// (src/http/cluster-write-turns.ts, src/http/write-gate.ts).
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { spawnProcess } from '../helpers/process.js';

interface Held {
  pid: number;
  started: number;
  ended: number;
}

/** One request on a connection of its own: node:cluster hands connections to its workers in turn. */
const request = (port: number, method: string, path: string) =>
  new Promise<Held>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve(JSON.parse(body) as Held));
    });
    req.on('error', reject);
    req.end();
  });

/** Whether any two of these held requests ran at the same time. */
const overlapping = (held: Held[]) => {
  const sorted = [...held].sort((a, b) => a.started - b.started);
  return sorted.some((h, i) => i > 0 && h.started < sorted[i - 1]!.ended);
};

describe('the write gate of a cluster', () => {
  it('runs one write at a time in all processes while one of them reads, and up to the limit after', async () => {
    const server = spawnProcess(
      process.execPath,
      ['--import', 'tsx', 'test/helpers/cluster-write-gate-server.ts'],
      {
        WRITE_LIMIT: '4',
      },
    );
    const port = Number((await server.waitFor(/listening on (\d+)/))[1]);

    // A read that lasts until well after the writes, in one process.
    const read = request(port, 'GET', '/read?ms=5000');
    await server.waitFor(/read started/);
    const during = await Promise.all(Array.from({ length: 4 }, () => request(port, 'POST', '/write?ms=100')));
    const reading = await read;
    // The writes were served by both processes, yet ran one after another.
    expect(new Set(during.map((w) => w.pid)).size).toBe(2);
    expect(during.every((w) => w.ended <= reading.ended)).toBe(true);
    expect(overlapping(during)).toBe(false);

    // No read now: the four run together (the limit is 4 in all).
    await new Promise((resolve) => setTimeout(resolve, 200));
    const after = await Promise.all(Array.from({ length: 4 }, () => request(port, 'POST', '/write?ms=1000')));
    expect(new Set(after.map((w) => w.pid)).size).toBe(2);
    expect(overlapping(after)).toBe(true);
  });

  it('gets back the turn of a write whose process died', async () => {
    const server = spawnProcess(
      process.execPath,
      ['--import', 'tsx', 'test/helpers/cluster-write-gate-server.ts'],
      {
        WRITE_LIMIT: '1',
      },
    );
    const port = Number((await server.waitFor(/listening on (\d+)/))[1]);
    // The only turn, taken by a write whose process then exits: its connection is cut.
    await expect(request(port, 'POST', '/write?ms=0&exit=1')).rejects.toThrow();
    // The other process writes all the same.
    const next = await request(port, 'POST', '/write?ms=10');
    expect(next.pid).toBeGreaterThan(0);
  });
});
