// Run after the whole suite (make test): fails when an operation of openapi.yaml never answered
// 2xx to a test, so a new operation cannot land untested, and when a test got an answer its
// operation does not declare, so the contract says every status a client can meet.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  OPERATIONS_LOG,
  operations,
  type RecordedRequest,
  uncoveredOperations,
  undeclaredAnswers,
} from './operations.js';

const requests = readdirSync(OPERATIONS_LOG).flatMap((file) =>
  readFileSync(path.join(OPERATIONS_LOG, file), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as RecordedRequest),
);
const missing = uncoveredOperations(requests);
if (missing.length > 0) {
  console.error(`No test got a 2xx answer from these operations of openapi.yaml:\n  ${missing.join('\n  ')}`);
  process.exit(1);
}
const undeclared = undeclaredAnswers(requests);
if (undeclared.length > 0) {
  console.error(`Tests got answers these operations do not declare:\n  ${undeclared.join('\n  ')}`);
  process.exit(1);
}
console.log(`operation coverage: all ${operations.length} operations of openapi.yaml answered 2xx in a test`);
