// Request counts per API key that every API process and instance shares through PostgreSQL,
// without a database round trip per request: each process counts in memory and, every syncMs,
// adds its new hits to its own row and reads back the totals of every instance. A key can
// therefore go over its limit by at most what the other processes let through in one sync
// interval. http/rate-limit.ts turns the counts into answers and headers.
import { randomUUID } from 'node:crypto';
import * as rateLimits from '../queries/rate-limits.js';
import type { ServiceContext } from './context.js';

interface Entry {
  windowStart: number;
  /** The total of every instance at the last sync (this one's flushed hits included). */
  known: number;
  /** Hits on their way to the database in the flush now running. */
  flushing: number;
  /** Hits since, not yet flushed. */
  pending: number;
}

export interface Hits {
  /** This window's requests of the key, every instance's, this one included. */
  totalHits: number;
  /** When the window ends (epoch ms). */
  resetAt: number;
}

export class SharedRateLimitStore {
  readonly #instance = randomUUID();
  readonly #entries = new Map<string, Entry>();
  #windowMs = 60_000;
  #timer: NodeJS.Timeout | undefined;
  #lastPurge = 0;
  #sync: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: ServiceContext,
    private readonly syncMs = 500,
  ) {}

  init(windowMs: number): void {
    this.#windowMs = windowMs;
    this.#timer = setInterval(() => void this.sync(), this.syncMs);
    this.#timer.unref();
  }

  #entry(key: string, now = Date.now()): Entry {
    const windowStart = Math.floor(now / this.#windowMs) * this.#windowMs;
    let entry = this.#entries.get(key);
    if (!entry || entry.windowStart !== windowStart) {
      entry = { windowStart, known: 0, flushing: 0, pending: 0 };
      this.#entries.set(key, entry);
    }
    return entry;
  }

  increment(key: string): Hits {
    const entry = this.#entry(key);
    entry.pending++;
    return {
      totalHits: entry.known + entry.flushing + entry.pending,
      resetAt: entry.windowStart + this.#windowMs,
    };
  }

  /** Flushes this process' new hits and learns everyone's totals; one flush at a time. */
  sync(): Promise<void> {
    this.#sync = this.#sync.then(() => this.#flush());
    return this.#sync;
  }

  async #flush(): Promise<void> {
    const now = Date.now();
    const current = Math.floor(now / this.#windowMs) * this.#windowMs;
    const batch: Array<[string, Entry, number]> = [];
    for (const [key, entry] of this.#entries) {
      if (entry.windowStart < current) {
        this.#entries.delete(key); // a new window starts from zero
        continue;
      }
      batch.push([key, entry, entry.pending]);
      entry.flushing += entry.pending;
      entry.pending = 0;
    }
    if (batch.length === 0) return;
    try {
      const totals = await rateLimits.addHits(
        this.ctx.db,
        this.#instance,
        batch.map(([key, entry, hits]) => ({ key, windowStart: new Date(entry.windowStart), hits })),
      );
      const byKey = new Map(totals.map((t) => [`${t.key} ${t.window_start.getTime()}`, Number(t.total)]));
      for (const [key, entry, hits] of batch) {
        entry.flushing -= hits;
        entry.known = byKey.get(`${key} ${entry.windowStart}`) ?? entry.known + hits;
      }
      if (now - this.#lastPurge > this.#windowMs) {
        this.#lastPurge = now;
        await rateLimits.purgeHits(this.ctx.db, new Date(current - this.#windowMs));
      }
    } catch {
      // The database is away: keep counting here and hand the hits over at the next sync.
      for (const [, entry, hits] of batch) {
        entry.flushing -= hits;
        entry.pending += hits;
      }
    }
  }

  async shutdown(): Promise<void> {
    clearInterval(this.#timer);
    await this.sync();
  }
}
