// The loop of the worker's frequent jobs: a round, then a pause, shorter after a round that found
// work (MRR compaction keeps up with a stream of writes, and polls gently when there is none).
import { describe, expect, it, vi } from 'vitest';
import { startPeriodic } from '../../src/jobs/periodic.js';
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
        { intervalMs: 200, busyIntervalMs: 50, logger: createLogger({ level: 'silent' }), failure: 'failed' },
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

  it('keeps going after a failed round, at the idle pace', async () => {
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
        { intervalMs: 200, busyIntervalMs: 50, logger, failure: 'failed' },
      );
      await vi.advanceTimersByTimeAsync(250);
      await job.stop();
      expect([calls, warnings.length]).toEqual([2, 2]);
    } finally {
      vi.useRealTimers();
    }
  });
});
