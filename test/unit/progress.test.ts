// The progress line of long commands: redrawn in place on a terminal, plain lines elsewhere.
import { describe, expect, it, vi } from 'vitest';
import { startProgress } from '../../src/cli/progress.js';

function fakeStream(isTTY: boolean) {
  const written: string[] = [];
  return {
    written,
    stream: { isTTY, write: (text: string) => written.push(text) } as unknown as NodeJS.WriteStream,
  };
}

describe('startProgress', () => {
  it('redraws one line on a terminal (at most 10 times a second) and clears it at the end', () => {
    vi.useFakeTimers();
    try {
      const { written, stream } = fakeStream(true);
      const progress = startProgress('counting', stream);
      vi.advanceTimersByTime(200);
      progress.update(5_000, 10_000);
      progress.update(6_000, 10_000);
      progress.update(10_000, 10_000);
      progress.finish();
      expect(written).toHaveLength(3);
      expect(written[0]!.startsWith('\r\u001b[Kcounting: 5,000 of 10,000 (50%)')).toBe(true);
      expect(written[1]).toMatch(/10,000 of 10,000 \(100%\)/);
      expect(written[2]).toBe('\r\x1b[K');
    } finally {
      vi.useRealTimers();
    }
  });

  it('prints a plain line at most every 5 s elsewhere, and the last figures at the end', () => {
    vi.useFakeTimers();
    try {
      const { written, stream } = fakeStream(false);
      const progress = startProgress('counting', stream);
      progress.update(1, 100);
      expect(written).toEqual([]);
      vi.advanceTimersByTime(5_001);
      progress.update(40, 100);
      progress.update(41, 100);
      vi.advanceTimersByTime(1_000);
      progress.update(100, 100);
      progress.finish();
      expect(written).toHaveLength(2);
      expect(written[0]).toMatch(/^counting: 40 of 100 \(40%\), \d+\/s, 5 s, about \d+ s left\n$/);
      expect(written[1]).toMatch(/^counting: 100 of 100 \(100%\)/);
    } finally {
      vi.useRealTimers();
    }
  });
});
