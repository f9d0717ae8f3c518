// A migration still running after a second says so, and then how long it took; quick ones are quiet.
import { describe, expect, it, vi } from 'vitest';
import { withProgress } from '../../src/database/migrator.js';

describe('withProgress', () => {
  it('announces a slow migration after a second and reports its time; a quick one says nothing', async () => {
    vi.useFakeTimers();
    try {
      const lines: string[] = [];
      const slow = withProgress(
        '202601010001_big_index',
        { up: () => new Promise<void>((resolve) => setTimeout(resolve, 2500)), down: async () => {} },
        (line) => lines.push(line),
      );
      const running = slow.up(undefined as never);
      await vi.advanceTimersByTimeAsync(999);
      expect(lines).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      expect(lines).toEqual(['migration up 202601010001_big_index: running ...']);
      await vi.advanceTimersByTimeAsync(1500);
      await running;
      expect(lines).toHaveLength(2);
      expect(lines[1]).toMatch(/^migration up 202601010001_big_index: done in \d+\.\d s$/);

      lines.length = 0;
      await slow.down!(undefined as never);
      await vi.advanceTimersByTimeAsync(5000);
      expect(lines).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('fails as the migration fails, and stops announcing it', async () => {
    vi.useFakeTimers();
    try {
      const lines: string[] = [];
      const failing = withProgress(
        '202601010002_bad',
        {
          up: () => Promise.reject(new Error('boom')),
        },
        (line) => lines.push(line),
      );
      await expect(failing.up(undefined as never)).rejects.toThrow('boom');
      await vi.advanceTimersByTimeAsync(5000);
      expect(lines).toEqual([]);
      expect('down' in failing).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });
});
