// What a partner's code must (and must not) compile against the SDK's types. Never run: sdk.test.ts
// type-checks it with the compiler (`tsc --strict`), where an error, or an @ts-expect-error that
// expects one in vain, fails the test. Each function is one case.
import { type components, paginate, type SubscriptionsClient } from '../../clients/typescript/src/index.js';

type Plan = components['schemas']['Plan'];

// Request bodies: a field with a default in the spec may be left out (the API fills it in).
export async function minimalWrites(api: SubscriptionsClient, userId: string, walletId: string) {
  const { data: plan } = await api.POST('/api/v1/plans', {
    body: { code: 'basic', name: 'Basic', interval: 'month', price: { model: 'flat', amount: '10.00' } },
  });
  await api.POST('/api/v1/wallets', { body: { user_id: userId, name: 'Credits' } });
  await api.POST('/api/v1/wallets/{walletId}/grants', {
    params: { path: { walletId } },
    body: { credits: '100' },
  });
  await api.POST('/api/v1/webhook-endpoints/{webhookEndpointId}/rotate-secret', {
    params: { path: { webhookEndpointId: 'x' } },
    body: {},
  });
  await api.POST('/api/v1/webhook-endpoints/{webhookEndpointId}/rotate-secret', {
    params: { path: { webhookEndpointId: 'x' } },
  });
  // Answers keep their required fields required: the API always sends them.
  const intervalCount: number = plan!.interval_count;
  const id: string = plan!.id;
  return { intervalCount, id };
}

// The response type itself, not only a value read from it.
export const planFields = (plan: Plan): [number, string, string] => [
  plan.interval_count,
  plan.interval,
  plan.code,
];

// paginate() takes the options of the path's own GET.
export async function paginateOptions(api: SubscriptionsClient, walletId: string) {
  const seen: string[] = [];
  for await (const user of paginate(api, '/api/v1/users', { params: { query: { limit: 5 } } }))
    seen.push(user.email);
  for await (const user of paginate(api, '/api/v1/users')) seen.push(user.id);
  for await (const tx of paginate(api, '/api/v1/wallets/{walletId}/transactions', {
    params: { path: { walletId }, query: { limit: 10 } },
    signal: AbortSignal.timeout(5000),
  }))
    seen.push(tx.id);

  // @ts-expect-error a query parameter the path does not have
  paginate(api, '/api/v1/users', { params: { query: { no_such_param: 1 } } });
  // @ts-expect-error a query parameter of the wrong type
  paginate(api, '/api/v1/users', { params: { query: { limit: 'many' } } });
  // @ts-expect-error a path with a parameter needs it
  paginate(api, '/api/v1/wallets/{walletId}/transactions');
  // @ts-expect-error a path with a parameter needs it, in params.path
  paginate(api, '/api/v1/wallets/{walletId}/transactions', {});
  // @ts-expect-error the parameter of another path
  paginate(api, '/api/v1/wallets/{walletId}/transactions', { params: { path: { userId: walletId } } });
  // @ts-expect-error not a list
  paginate(api, '/api/v1/users/{userId}', { params: { path: { userId: walletId } } });
  return seen;
}

// An event's data is the resource as its own schema shows it: open in the contract, so a field read
// from it is unknown and must be narrowed, never silently any type (sdk1 #1).
export function eventData(event: components['schemas']['Event']) {
  // @ts-expect-error: data's fields are unknown until narrowed, not numbers
  const cost: number = event.data.plan_cost;
  const previous: unknown = event.previous?.status;
  return { cost, previous };
}
