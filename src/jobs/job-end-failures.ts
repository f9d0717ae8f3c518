// pg-boss 10 records a job's end without awaiting it (its src/manager.js, work(): a bare
// `this.complete(...)` or `this.fail(...)`). With the database away at that moment the promise
// rejects unhandled, and a Node 20 process ends on an unhandled rejection: the worker's, and the
// API's too when the worker runs inside it (ops6 #1), against "/healthz stays 200 while the
// database is away". Its Manager's complete and fail are wrapped once, so that such a failure is
// the queue's 'error' event (logged) instead: the job stays active and runs again once it
// expires, as one cut off by a crash does (every job is idempotent). Any other failure still
// rejects, as before.
import { createRequire } from 'node:module';
import { isDatabaseUnavailable } from '../database/errors.js';

type Recorder = (this: ManagerLike, ...args: unknown[]) => Promise<unknown>;
interface ManagerLike {
  emit(event: string, error: unknown): boolean;
}

const Manager = createRequire(import.meta.url)('pg-boss/src/manager.js') as {
  prototype: Record<'complete' | 'fail', Recorder>;
};

let wrapped = false;

/** Wraps pg-boss's complete and fail (once per process): a database away is an 'error' event. */
export function reportJobEndFailures(): void {
  if (wrapped) return;
  wrapped = true;
  for (const name of ['complete', 'fail'] as const) {
    const original = Manager.prototype[name];
    Manager.prototype[name] = function (this: ManagerLike, ...args: unknown[]) {
      return original.apply(this, args).catch((error: unknown) => {
        if (!isDatabaseUnavailable(error)) throw error;
        this.emit('error', error);
        return undefined;
      });
    };
  }
}
