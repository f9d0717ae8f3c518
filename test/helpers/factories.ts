// Unique data per call, created through the API so tests exercise the real path.
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import type { RequestBody, Schemas } from '../../src/contract.js';
import type { Api } from './app.js';

type Caller = { api: Api };

const unique = () => randomUUID().slice(0, 8);

export async function createUser(
  { api }: Caller,
  overrides: Partial<RequestBody<'createUser'>> = {},
): Promise<Schemas['User']> {
  const tag = unique();
  const res = await api
    .post('/api/v1/users')
    .send({ name: `User ${tag}`, email: `user-${tag}@example.com`, ...overrides });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as Schemas['User'];
}

export async function createFeature(
  { api }: Caller,
  overrides: Partial<RequestBody<'createFeature'>> = {},
): Promise<Schemas['Feature']> {
  const res = await api.post('/api/v1/features').send({ name: `feature-${unique()}`, ...overrides });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as Schemas['Feature'];
}

export async function createSubscription(
  ctx: Caller,
  overrides: Partial<RequestBody<'createSubscription'>> = {},
): Promise<Schemas['Subscription']> {
  const userId = overrides.user_id ?? (await createUser(ctx)).id;
  const res = await ctx.api
    .post('/api/v1/subscriptions')
    .send({ user_id: userId, status: 'active', plan_cost: '49.99', start_date: '2026-11-01', ...overrides });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as Schemas['Subscription'];
}
