// The operations of openapi.yaml, matched by method and path: auth reads each one's scopes, and
// the test suite checks every one was exercised.
import { spec } from './spec.js';

export interface Operation {
  method: string;
  template: string;
  operationId: string;
  /** Scopes a key needs, from the operation's `security`; null for a public operation. */
  scopes: string[] | null;
  /** The media types its request body may have; empty when it takes no body. */
  mediaTypes: string[];
  /** Whether it needs a body. */
  bodyRequired: boolean;
  /** Its query parameters of type integer. */
  integerQuery: string[];
  /** Its query parameters that take reserved characters as they are (allowReserved). */
  reservedQuery: string[];
  /** The status codes it declares (the test suite checks every answer is one of them). */
  statuses: string[];
  pattern: RegExp;
}

const METHODS = new Set(['get', 'put', 'post', 'patch', 'delete']);
type SecurityRequirement = Record<string, string[]>;
type Parameter = { name: string; in: string; allowReserved?: boolean; schema?: { type?: unknown } };

/** A parameter, or the one of components/parameters its $ref names. */
function resolve(parameter: Parameter | { $ref: string }): Parameter {
  if (!('$ref' in parameter)) return parameter;
  const name = parameter.$ref.replace('#/components/parameters/', '');
  return (spec.components as { parameters: Record<string, Parameter> }).parameters[name]!;
}

export const operations: Operation[] = Object.entries(spec.paths).flatMap(([template, item]) =>
  Object.entries(item)
    .filter(([method]) => METHODS.has(method))
    .map(([method, raw]) => {
      const op = raw as {
        operationId: string;
        security?: SecurityRequirement[];
        requestBody?: { content?: Record<string, unknown>; required?: boolean };
        responses: Record<string, unknown>;
        parameters?: Array<Parameter | { $ref: string }>;
      };
      const shared = (item as { parameters?: Array<Parameter | { $ref: string }> }).parameters ?? [];
      const security = op.security ?? (spec.security as SecurityRequirement[]);
      return {
        method: method.toUpperCase(),
        template,
        operationId: op.operationId,
        scopes: security.length ? Object.values(security[0] ?? {}).flat() : null,
        mediaTypes: Object.keys(op.requestBody?.content ?? {}),
        bodyRequired: op.requestBody?.required === true,
        statuses: Object.keys(op.responses),
        integerQuery: [...shared, ...(op.parameters ?? [])]
          .map(resolve)
          .filter((p) => p.in === 'query' && p.schema?.type === 'integer')
          .map((p) => p.name),
        reservedQuery: [...shared, ...(op.parameters ?? [])]
          .map(resolve)
          .filter((p) => p.in === 'query' && p.allowReserved === true)
          .map((p) => p.name),
        pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`),
      };
    }),
);

export function findOperation(method: string, path: string): Operation | undefined {
  return operations.find((op) => op.method === method && op.pattern.test(path));
}
