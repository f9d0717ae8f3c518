// Maps the requests the tests made onto the operations of openapi.yaml.
import path from 'node:path';
import { operations } from '../../src/operations.js';

export { operations };

/** Each test file appends the requests it made here (see test/helpers/app.ts). */
export const OPERATIONS_LOG = path.resolve('.data/test-operations');

export interface RecordedRequest {
  method: string;
  path: string;
  status: number;
}

/** Operations no recorded request reached with a 2xx answer. */
export function uncoveredOperations(requests: RecordedRequest[]): string[] {
  return operations
    .filter(
      (op) =>
        !requests.some(
          (r) => r.method === op.method && op.pattern.test(r.path) && r.status >= 200 && r.status < 300,
        ),
    )
    .map((op) => `${op.operationId} (${op.method} ${op.template})`);
}

/**
 * Answers the contract does not declare, as "status operationId (METHOD template)": a client
 * generated from the contract, or a response validator, would not expect them.
 */
export function undeclaredAnswers(requests: RecordedRequest[]): string[] {
  const found = new Set<string>();
  for (const r of requests) {
    const method = r.method === 'HEAD' ? 'GET' : r.method;
    const op = operations.find((o) => o.method === method && o.pattern.test(r.path));
    // A 500 is a bug, never an answer to give: the tests provoke it on purpose (a database gone)
    // to check it is a problem+json that leaks nothing; the contract does not list it.
    if (r.status === 500) continue;
    if (op && !op.statuses.includes(String(r.status)) && !op.statuses.includes('default'))
      found.add(`${r.status} ${op.operationId} (${op.method} ${op.template})`);
  }
  return [...found].sort();
}
