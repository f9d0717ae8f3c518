// The loop of a job the worker runs every few milliseconds (MRR compaction, wallet expiry): a
// round, then a pause (a shorter one, busyIntervalMs, after a round that found work); a failed
// round is logged and the next one tries again; stop() ends the pause at once and waits for a
// round in progress.
import type { Logger } from '../logger.js';

export interface RunningJob {
  stop(): Promise<void>;
}

export function startPeriodic(
  /** Answers true when it found work: the next round then comes after busyIntervalMs. */
  round: (stopping: () => boolean) => Promise<boolean | void>,
  options: { intervalMs: number; busyIntervalMs?: number; logger: Logger; failure: string },
): RunningJob {
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;

  const loop = (async () => {
    while (!stopping) {
      let busy = false;
      try {
        busy = (await round(() => stopping)) === true;
      } catch (error) {
        options.logger.warn({ err: error }, options.failure);
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(
          resolve,
          busy ? (options.busyIntervalMs ?? options.intervalMs) : options.intervalMs,
        );
      });
    }
  })();

  return {
    async stop() {
      stopping = true;
      clearTimeout(timer);
      wake?.();
      await loop;
    },
  };
}
