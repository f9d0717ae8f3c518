// The loop of a job the worker runs every few milliseconds (MRR compaction, wallet expiry): a
// round, then a pause (a shorter one, busyIntervalMs, after a round that found work); a failed
// round is logged and the next one tries again; stop() ends the pause at once and waits for a
// round in progress. Failed rounds in a row back off (doubling up to a limit): while the database
// is away, a job polling five times a second would log a stack trace five times a second.
import type { Logger } from '../logger.js';

export interface RunningJob {
  stop(): Promise<void>;
}

/** The longest pause after failed rounds in a row. */
export const MAX_BACKOFF_MS = 30_000;

export function startPeriodic(
  /** Answers true when it found work: the next round then comes after busyIntervalMs. */
  round: (stopping: () => boolean) => Promise<boolean | void>,
  options: {
    intervalMs: number;
    busyIntervalMs?: number;
    logger: Logger;
    /** The job, in the log: 'MRR compaction'. */
    name: string;
  },
): RunningJob {
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;

  const loop = (async () => {
    let failures = 0;
    while (!stopping) {
      let pause: number;
      try {
        const busy = (await round(() => stopping)) === true;
        if (failures > 0) options.logger.info(`${options.name} recovered after ${failures} failed rounds`);
        failures = 0;
        pause = busy ? (options.busyIntervalMs ?? options.intervalMs) : options.intervalMs;
      } catch (error) {
        failures++;
        pause = Math.min(
          options.intervalMs * 2 ** (failures - 1),
          Math.max(MAX_BACKOFF_MS, options.intervalMs),
        );
        options.logger.warn(
          { err: error, failedRounds: failures },
          `${options.name} failed; next try in ${pause} ms`,
        );
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, pause);
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
