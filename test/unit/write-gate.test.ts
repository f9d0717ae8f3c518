// The write gate (src/http/write-gate.ts): writes beyond the limit wait in order, one at a time
// while a read runs; reads, long-running maintenance and single usage events (grouped by the
// service) never wait; and a client that leaves while waiting gives up its turn.
import express from 'express';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { limitConcurrentWrites, WriteTurns, writeTurn } from '../../src/http/write-gate.js';

/** A server whose POST /w/:name handlers finish only when the test releases them. */
async function gated(limit: number) {
  const started: string[] = [];
  const release = new Map<string, () => void>();
  const app = express();
  app.use((req, _res, next) => {
    if (req.path === '/rebuild') req.operation = { operationId: 'rebuildAnalytics' } as never;
    if (req.path === '/usage-event') req.operation = { operationId: 'createUsageEvent' } as never;
    next();
  });
  app.use(limitConcurrentWrites(limit));
  const hold = (name: string, res: express.Response) => {
    started.push(name);
    release.set(name, () => res.json({ name }));
  };
  app.post('/w/:name', (req, res) => hold(req.params.name, res));
  app.post('/rebuild', (_req, res) => hold('rebuild', res));
  app.post('/usage-event', (_req, res) => hold('usage-event', res));
  app.get('/r', (_req, res) => res.json({ read: true }));
  app.get('/r/:name', (req, res) => hold(req.params.name, res));
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, started, release, close: () => new Promise((resolve) => server.close(resolve)) };
}

const until = async (condition: () => boolean) => {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(condition()).toBe(true);
};

let close: (() => Promise<unknown>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

describe('limitConcurrentWrites', () => {
  it('runs writes up to the limit, the next in order of arrival as each one ends', async () => {
    const s = await gated(2);
    close = s.close;
    const answers = ['a', 'b', 'c', 'd'].map((name) => fetch(`${s.base}/w/${name}`, { method: 'POST' }));
    await until(() => s.started.length === 2);
    // Still two: the others wait, however long the first take.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(s.started).toHaveLength(2);
    const first = s.started[0]!;
    s.release.get(first)!();
    await until(() => s.started.length === 3);
    for (const name of s.started.slice(1)) s.release.get(name)!();
    await until(() => s.started.length === 4);
    s.release.get(s.started[3]!)!();
    const bodies = await Promise.all(answers.map(async (a) => (await (await a).json()) as { name: string }));
    expect(bodies.map((b) => b.name)).toEqual(['a', 'b', 'c', 'd']);
    expect(new Set(s.started)).toEqual(new Set(['a', 'b', 'c', 'd']));
  });

  it('never holds back a read, a rebuild or a single usage event (grouped by the service)', async () => {
    const s = await gated(1);
    close = s.close;
    const write = fetch(`${s.base}/w/a`, { method: 'POST' });
    await until(() => s.started.length === 1);
    const read = await fetch(`${s.base}/r`);
    expect(await read.json()).toEqual({ read: true });
    const rebuild = fetch(`${s.base}/rebuild`, { method: 'POST' });
    await until(() => s.started.includes('rebuild'));
    const usageEvent = fetch(`${s.base}/usage-event`, { method: 'POST' });
    await until(() => s.started.includes('usage-event'));
    s.release.get('rebuild')!();
    s.release.get('usage-event')!();
    s.release.get('a')!();
    expect((await rebuild).status).toBe(200);
    expect((await usageEvent).status).toBe(200);
    expect((await write).status).toBe(200);
  });

  it('runs one write at a time while a read runs, and up to the limit again after it', async () => {
    const s = await gated(3);
    close = s.close;
    const read = fetch(`${s.base}/r/slow`);
    await until(() => s.started.includes('slow'));
    const writes = ['a', 'b', 'c', 'd'].map((name) => fetch(`${s.base}/w/${name}`, { method: 'POST' }));
    await until(() => s.started.length === 2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(s.started).toEqual(['slow', 'a']);
    // A write ends while the read still runs: the next one alone.
    s.release.get('a')!();
    await until(() => s.started.length === 3);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(s.started).toEqual(['slow', 'a', 'b']);
    // The read ends, and the reads stay quiet a moment: the limit (3) holds again.
    s.release.get('slow')!();
    expect((await read).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 150));
    s.release.get('b')!();
    await until(() => s.started.length === 5);
    expect(s.started.slice(3)).toEqual(['c', 'd']);
    s.release.get('c')!();
    s.release.get('d')!();
    expect((await Promise.all(writes)).map((w) => w.status)).toEqual([200, 200, 200, 200]);
  });

  it('skips a waiting request whose client left, and the place goes to the next', async () => {
    const s = await gated(1);
    close = s.close;
    const first = fetch(`${s.base}/w/a`, { method: 'POST' });
    await until(() => s.started.length === 1);
    const leaving = new AbortController();
    const left = fetch(`${s.base}/w/b`, { method: 'POST', signal: leaving.signal }).catch(() => 'aborted');
    // Queued behind a, then gone.
    await new Promise((resolve) => setTimeout(resolve, 50));
    leaving.abort();
    expect(await left).toBe('aborted');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const third = fetch(`${s.base}/w/c`, { method: 'POST' });
    s.release.get('a')!();
    await until(() => s.started.includes('c'));
    s.release.get('c')!();
    expect((await first).status).toBe(200);
    expect((await third).status).toBe(200);
    expect(s.started).toEqual(['a', 'c']);
  });
});

describe('a turn taken by a service for a group of requests (writeTurn)', () => {
  it('waits like a request, and its end gives the turn to the next', async () => {
    const turns = new WriteTurns(1);
    const order: string[] = [];
    const first = await writeTurn(turns);
    order.push('first');
    const second = writeTurn(turns).then((end) => (order.push('second'), end));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(order).toEqual(['first']); // the only turn is taken
    first();
    (await second)();
    expect(order).toEqual(['first', 'second']);
    const third = await writeTurn(turns); // free again
    third();
  });
});
