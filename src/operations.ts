// The operations of openapi.yaml, matched by method and path: auth reads each one's scopes, and
// the test suite checks every one was exercised.
import { spec } from './spec.js';

export interface Operation {
  method: string;
  template: string;
  operationId: string;
  /** Scopes a key needs, from the operation's `security`; null for a public operation. */
  scopes: string[] | null;
  pattern: RegExp;
}

const METHODS = new Set(['get', 'put', 'post', 'patch', 'delete']);
type SecurityRequirement = Record<string, string[]>;

export const operations: Operation[] = Object.entries(spec.paths).flatMap(([template, item]) =>
  Object.entries(item)
    .filter(([method]) => METHODS.has(method))
    .map(([method, raw]) => {
      const op = raw as { operationId: string; security?: SecurityRequirement[] };
      const security = op.security ?? (spec.security as SecurityRequirement[]);
      return {
        method: method.toUpperCase(),
        template,
        operationId: op.operationId,
        scopes: security.length ? Object.values(security[0] ?? {}).flat() : null,
        pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}/?$`),
      };
    }),
);

export function findOperation(method: string, path: string): Operation | undefined {
  return operations.find((op) => op.method === method && op.pattern.test(path));
}
