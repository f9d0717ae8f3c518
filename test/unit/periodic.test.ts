// The loop of the worker's frequent jobs: a round, then a pause, shorter after a round that found
// work (MRR compaction keeps up with a stream of writes, and polls gently when there is none).
import { describe, expect, it, vi } from 'vitest';
import { MAX_BACKOFF_MS, startPeriodic } from '../../src/jobs/periodic.js';
import { createLogger } from '../../src/logger.js';

describe('startPeriodic', () => {
  it('pauses busyIntervalMs after a round that found work, intervalMs after one that did not', async () => {
    vi.useFakeTimers();
    try {
      const rounds: number[] = [];
      let busy = true;
      const job = startPeriodic(
        () => {
          rounds.push(Date.now());
          return Promise.resolve(busy);
        },
        { intervalMs: 200, busyIntervalMs: 50, logger: createLogger({ level: 'silent' }), name: 'the job' },
      );
      const start = Date.now();
      await vi.advanceTimersByTimeAsync(160); // busy: rounds at 0, 50, 100, 150
      busy = false;
      await vi.advanceTimersByTimeAsync(430); // idle: the round at 200 finds none, the next is at 400
      await job.stop();
      expect(rounds.map((at) => at - start)).toEqual([0, 50, 100, 150, 200, 400]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('backs off after failed rounds in a row, up to a limit, and returns to its pace once a round succeeds', async () => {
    vi.useFakeTimers();
    try {
      const rounds: number[] = [];
      let failing = true;
      const warnings: string[] = [];
      const infos: string[] = [];
      const logger = createLogger({ level: 'silent' });
      logger.warn = (...args: unknown[]) => void warnings.push(String(args[1]));
      logger.info = (...args: unknown[]) => void infos.push(String(args[0]));
      const job = startPeriodic(
        () => {
          rounds.push(Date.now());
          return failing ? Promise.reject(new Error('database away')) : Promise.resolve(false);
        },
        { intervalMs: 200, logger, name: 'the job' },
      );
      const start = Date.now();
      // Fails at 0, then after 200, 400, ... 25,600 ms, then every 30 s (MAX_BACKOFF_MS).
      await vi.advanceTimersByTimeAsync(200 * (2 ** 8 - 1) + 30_000 + 1);
      const failed = rounds.map((at) => at - start);
      expect(failed).toEqual([0, 200, 600, 1400, 3000, 6200, 12600, 25400, 51000, 81000]);
      expect(warnings.slice(0, 2)).toEqual([
        'the job failed; next try in 200 ms',
        'the job failed; next try in 400 ms',
      ]);
      expect(warnings.at(-1)).toBe(`the job failed; next try in ${MAX_BACKOFF_MS} ms`);
      failing = false;
      await vi.advanceTimersByTimeAsync(30_000 + 200 + 1); // the round at 111,000 succeeds; then 200 ms apart
      await job.stop();
      expect(rounds.slice(failed.length).map((at) => at - start)).toEqual([111000, 111200]);
      expect(infos).toEqual(['the job recovered after 10 failed rounds']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps going after a failed round', async () => {
    vi.useFakeTimers();
    try {
      let calls = 0;
      const warnings: unknown[] = [];
      const logger = createLogger({ level: 'silent' });
      logger.warn = (...args: unknown[]) => void warnings.push(args);
      const job = startPeriodic(
        () => {
          calls++;
          return Promise.reject(new Error('database away'));
        },
        { intervalMs: 200, busyIntervalMs: 50, logger, name: 'the job' },
      );
      await vi.advanceTimersByTimeAsync(250);
      await job.stop();
      expect([calls, warnings.length]).toEqual([2, 2]);
    } finally {
      vi.useRealTimers();
    }
  });
});
