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
