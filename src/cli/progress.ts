// Progress of a long command (the seed, the rebuild): on a terminal, one line redrawn in place;
// otherwise (CI, a log file) a plain line at most every 5 seconds, so a slow step is never silent.

export interface Progress {
  /** Where the work stands: `done` of `total` (total may grow while counting). */
  update(done: number, total: number): void;
  /**
   * A step with nothing to count (one long SQL statement): its label and how long it has run,
   * redrawn until the next update or finish.
   */
  wait(label: string): void;
  /** Ends the line (and prints the last figures when nothing was printed for them). */
  finish(): void;
}

const PLAIN_EVERY_MS = 5_000;

export function startProgress(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  const started = performance.now();
  const tty = stream.isTTY === true;
  let last = { done: 0, total: 0 };
  let first: { at: number; done: number } = { at: started, done: 0 };
  let reported = false;
  let printedAt = started;
  let printed = '';
  const line = () => {
    const seconds = (performance.now() - started) / 1000;
    const percent = last.total > 0 ? Math.floor((100 * last.done) / last.total) : 0;
    // The pace since the first report: what ran before it (preparing, say) is not counting.
    const counting = (performance.now() - first.at) / 1000;
    const rate = counting > 0 ? Math.round((last.done - first.done) / counting) : 0;
    const left =
      rate > 0 && last.total > last.done
        ? `, about ${Math.ceil((last.total - last.done) / rate)} s left`
        : '';
    return `${label}: ${last.done.toLocaleString('en')} of ${last.total.toLocaleString('en')} (${percent}%), ${rate.toLocaleString('en')}/s, ${seconds.toFixed(0)} s${left}`;
  };
  let waiting: NodeJS.Timeout | undefined;
  const stopWaiting = () => {
    clearInterval(waiting);
    waiting = undefined;
  };
  return {
    wait(waitLabel) {
      stopWaiting();
      const since = performance.now();
      const show = () => {
        const text = `${waitLabel}: ${((performance.now() - since) / 1000).toFixed(0)} s`;
        stream.write(tty ? `\r\x1b[K${text}` : `${text}\n`);
      };
      show();
      waiting = setInterval(show, tty ? 1_000 : PLAIN_EVERY_MS);
      waiting.unref();
    },
    update(done, total) {
      stopWaiting();
      if (!reported) {
        first = { at: performance.now(), done };
        reported = true;
      }
      last = { done, total };
      const now = performance.now();
      if (tty) {
        if (now - printedAt < 100 && done < total) return;
        stream.write(`\r\x1b[K${line()}`);
      } else {
        if (now - printedAt < PLAIN_EVERY_MS) return;
        printed = line();
        stream.write(`${printed}\n`);
      }
      printedAt = now;
    },
    finish() {
      stopWaiting();
      if (tty) stream.write(`\r\x1b[K`);
      else if (printed !== '' && printed !== line()) stream.write(`${line()}\n`);
    },
  };
}

/**
 * The progress of a rebuild or a consistency check on one line: while PostgreSQL reads and
 * encodes every customer's input (one statement) the time it has taken, then customers counted.
 */
export function countingProgress(progress: Progress, reading: string, comparing = 'comparing') {
  return (stage: 'reading' | 'counting' | 'comparing', done: number, total: number): void => {
    if (stage === 'reading') progress.wait(reading);
    else if (stage === 'comparing') progress.wait(comparing);
    else progress.update(done, total);
  };
}
