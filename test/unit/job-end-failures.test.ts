// pg-boss records a job's end without awaiting it: with the database away, that rejection must
// not end the process (ops6 #1). A database away becomes the queue's 'error' event; any other
// failure still rejects.
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { reportJobEndFailures } from '../../src/jobs/job-end-failures.js';

type Manager = {
  db: { executeSql(): Promise<unknown> };
  emit(event: string, error: unknown): boolean;
  complete(name: string, id: string): Promise<unknown>;
  fail(name: string, id: string, data: unknown): Promise<unknown>;
};
const { prototype } = createRequire(import.meta.url)('pg-boss/src/manager.js') as { prototype: Manager };

/** A pg-boss Manager whose database fails every statement with `error`, recording its events. */
function managerFailingWith(error: Error) {
  const emitted: unknown[] = [];
  const manager = Object.assign(Object.create(prototype) as Manager, {
    db: { executeSql: () => Promise.reject(error) },
    emit: (_event: string, e: unknown) => emitted.push(e) > 0,
  });
  return { manager, emitted };
}

describe("pg-boss's record of a job's end", () => {
  it('reports a database away as an error event instead of rejecting, for complete and fail', async () => {
    reportJobEndFailures();
    const away = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const { manager, emitted } = managerFailingWith(away);
    await expect(manager.complete('due', randomUUID())).resolves.toBeUndefined();
    await expect(manager.fail('due', randomUUID(), new Error('job failed'))).resolves.toBeUndefined();
    expect(emitted).toEqual([away, away]);
  });

  it('still rejects with any other failure', async () => {
    reportJobEndFailures();
    const bug = new TypeError('a bug');
    const { manager, emitted } = managerFailingWith(bug);
    await expect(manager.complete('due', randomUUID())).rejects.toBe(bug);
    expect(emitted).toEqual([]);
  });
});
