// Statuses the contract must declare because of how the API works, not because of one operation's
// rules: an operation that accepts an Idempotency-Key can answer 409 idempotency-in-progress and
// 422 idempotency-key-reused (the API's description, "Idempotency"); a write to a subscription is
// refused with 409 while its test clock is advancing. And a header an answer may lack is not
// declared as always sent.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

type Node = Record<string, unknown> & { $ref?: string };
const bundle = parse(readFileSync('generated/openapi.yaml', 'utf8')) as Node;
const deref = (node: unknown): Node | undefined => {
  let at = node as Node | undefined;
  while (at?.$ref)
    at = at.$ref
      .slice(2)
      .split('/')
      .reduce<Node | undefined>((x, k) => x?.[k] as Node | undefined, bundle);
  return at;
};

interface Operation {
  method: string;
  path: string;
  id: string;
  parameters: Node[];
  responses: Record<string, Node>;
}
const operations: Operation[] = Object.entries(bundle.paths as Record<string, Node>).flatMap(([path, item]) =>
  ['get', 'put', 'post', 'patch', 'delete']
    .filter((method) => item[method])
    .map((method) => {
      const op = item[method] as Node;
      return {
        method: method.toUpperCase(),
        path,
        id: op.operationId as string,
        parameters: [...((item.parameters as Node[]) ?? []), ...((op.parameters as Node[]) ?? [])]
          .map(deref)
          .filter((p): p is Node => p !== undefined),
        responses: op.responses as Record<string, Node>,
      };
    }),
);
const byId = new Map(operations.map((op) => [op.id, op]));

describe('operations that accept an Idempotency-Key', () => {
  const keyed = operations.filter((op) => op.parameters.some((p) => p.name === 'Idempotency-Key'));

  it('are the writes, less the retry-safe ones and those whose answer carries a secret', () => {
    expect(keyed.length).toBeGreaterThan(40);
    expect(keyed.filter((op) => op.method === 'GET')).toEqual([]);
    for (const id of ['createTenant', 'createApiKey', 'createUsageEvent', 'createUsageEvents'])
      expect(keyed.map((op) => op.id)).not.toContain(id);
  });

  it('declare 409 (idempotency-in-progress) and 422 (idempotency-key-reused), by the shared answers', () => {
    const missing = keyed.flatMap((op) =>
      (
        [
          ['409', '#/components/responses/Conflict'],
          ['422', '#/components/responses/Unprocessable'],
        ] as const
      )
        .filter(([status, ref]) => op.responses[status]?.$ref !== ref)
        .map(([status]) => `${status} ${op.method} ${op.path}`),
    );
    expect(missing).toEqual([]);
  });

  it('find both problem types, and Retry-After, described in the answers they declare', () => {
    const responses = bundle.components as Record<string, Record<string, Node>>;
    const conflict = responses.responses!.Conflict!;
    expect(conflict.description).toContain('idempotency-in-progress');
    expect((conflict.headers as Node)['Retry-After']).toBeDefined();
    expect(responses.responses!.Unprocessable!.description).toContain('idempotency-key-reused');
  });
});

describe('writes to a subscription', () => {
  // Each is refused with 409 conflict while the subscription's test clock is advancing.
  const writes = [
    'updateSubscription',
    'deleteSubscription',
    'cancelSubscription',
    'withdrawSubscriptionCancellation',
    'pauseSubscription',
    'resumeSubscription',
    'scheduleSubscriptionChange',
    'cancelScheduledChange',
    'applySubscriptionDiscount',
    'removeSubscriptionDiscount',
    'createInvoiceItem',
    'linkSubscriptionFeature',
    'unlinkSubscriptionFeature',
    'createInvoice',
    'createOneOffInvoice',
    'finalizeInvoice',
    'voidInvoice',
    'createPayment',
    'createCreditNote',
  ];

  it('declare 409', () => {
    expect(writes.filter((id) => !byId.has(id))).toEqual([]);
    expect(writes.filter((id) => !byId.get(id)?.responses['409'])).toEqual([]);
  });
});

describe('GET /subscriptions/{subscriptionId}', () => {
  it('declares its ETag as optional, absent with include=features', () => {
    const ok = deref(byId.get('getSubscription')!.responses['200'])!;
    const etag = deref((ok.headers as Node).ETag)!;
    expect(etag.required).not.toBe(true);
    expect(etag.description).toMatch(/Absent with `include=features`/);
  });
});
