// The hot CRUD answers, byte for byte: GET a user by id, GET a page of 20 subscriptions and POST a
// user, on a fixed dataset at a fixed "now", compared with the bytes recorded in
// test/api/fixtures/crud-responses.txt (the status line, every header but the volatile ones, and
// the raw body). Any change to what these answers carry, their field order and their headers
// included, fails it: a speed change must leave them exactly as they are. Checked with response
// validation on (as the tests run) and off (as production runs). RECORD_RESPONSES=1 rewrites the
// file (review its diff: it is the behaviour).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Response } from 'supertest';
import { sql } from 'kysely';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { withTenant } from '../../src/database/connection.js';
import { useTestApp } from '../helpers/app.js';

const ctx = useTestApp();
const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/crud-responses.txt');
const RECORD = process.env.RECORD_RESPONSES === '1';
/** "Now" for the app while the subscriptions are read: their current periods depend on it. */
const NOW = new Date('2026-06-15T12:34:56.789Z');

const USER_ID = '01937f00-0000-7000-8000-00000000a001';
const CLOCK_ID = '01937f00-0000-7000-8000-00000000c001';
const subscriptionId = (i: number) => `01937f00-0000-7000-8000-${String(i).padStart(12, '0')}`;

/** Headers that differ from run to run (or with the requests made before): left out. */
const VOLATILE = new Set(['date', 'x-request-id', 'ratelimit', 'connection', 'keep-alive']);

/** The answer as text: status, the stable headers in the order sent, a blank line, the body. */
function transcript(res: Response): string {
  // The headers as sent, in their order (supertest's typings leave the raw response out).
  const raw = (res as unknown as { res: { rawHeaders: string[] } }).res.rawHeaders;
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!; // as sent: the names' case is part of the bytes
    // The policy's partition key names the API key, which each run creates anew.
    const value = /^ratelimit-policy$/i.test(name)
      ? raw[i + 1]!.replace(/pk=:[^:]*:/, 'pk=:<key>:')
      : raw[i + 1];
    if (!VOLATILE.has(name.toLowerCase())) headers.push(`${name}: ${value}`);
  }
  return [`${res.status}`, ...headers, '', res.text].join('\n');
}

beforeAll(async () => {
  await withTenant(ctx.db, { tenantId: ctx.tenant.id }, async (db) => {
    // Its times are fixed too (the insert types leave them to the database: raw SQL sets them).
    await sql`insert into users (id, name, email, region, created_at, updated_at)
      values (${USER_ID}, ${'Ada "Countess" Lovelace \u00e9\u4e2d'}, 'ada@example.com', 'DE',
              '2026-01-02T03:04:05.678Z', '2026-02-03T04:05:06.789Z')`.execute(db);
    await db
      .insertInto('test_clocks')
      .values({ id: CLOCK_ID, name: 'clock', frozen_time: new Date('2027-03-31T10:00:00Z') })
      .execute();
    // 25 subscriptions of every shape the page shows: monthly and yearly, several counts, anchors
    // on the 29th to 31st, ended, canceled, scheduled to cancel, on a test clock.
    const anchors = ['2025-01-31', '2024-02-29', '2026-03-30', '2025-11-15', '2026-06-15', '2026-07-01'];
    await db
      .insertInto('subscriptions')
      .values(
        Array.from({ length: 25 }, (_, i) => ({
          id: subscriptionId(i + 1),
          user_id: USER_ID,
          status: i % 7 === 3 ? 'canceled' : 'active',
          plan_cost: `${(i * 37) % 100}.${String((i * 13) % 100).padStart(2, '0')}`,
          billing_interval: i % 4 === 1 ? 'year' : 'month',
          interval_count: 1 + (i % 3),
          quantity: 1 + (i % 2),
          start_date: anchors[i % anchors.length]!,
          end_date:
            i % 5 === 2 ? (anchors[i % anchors.length]! < '2026-04-30' ? '2026-04-30' : '2026-08-31') : null,
          canceled_at: i % 7 === 3 ? new Date('2026-05-20T08:00:00.123Z') : null,
          cancel_at: i % 9 === 4 ? new Date('2099-01-01T00:00:00Z') : null,
          cancel_reason: i % 7 === 3 ? 'too expensive' : null,
          test_clock_id: i === 6 ? CLOCK_ID : null,
          billed_until: i % 6 === 0 ? '2026-07-31' : null,
          created_at: new Date(Date.UTC(2026, 0, 1, 0, 0, i, i)),
          updated_at: new Date(Date.UTC(2026, 1, 1, 0, i, 0, 999)),
        })),
      )
      .execute();
  });
});

afterEach(() => {
  vi.useRealTimers();
});

async function answers(api: typeof ctx.anonymous, key: string): Promise<Record<string, string>> {
  const auth = { Authorization: `Bearer ${key}` };
  vi.useFakeTimers({ toFake: ['Date'], now: NOW });
  const user = await api.get(`/api/v1/users/${USER_ID}`).set(auth);
  const page = await api.get('/api/v1/subscriptions?limit=20').set(auth);
  const next = await api
    .get(`/api/v1/subscriptions?limit=20&cursor=${(page.body as { next_cursor: string }).next_cursor}`)
    .set(auth);
  vi.useRealTimers();
  const created = await api
    .post('/api/v1/users')
    .set(auth)
    .send({ name: 'Grace \u00e9', email: `grace-${Math.random()}@example.com` });
  // The new user's id and times are the database's: the expected bytes are built from its row.
  const row = await ctx.db
    .selectFrom('users')
    .select(['id', 'email', 'created_at', 'updated_at'])
    .where('id', '=', (created.body as { id: string }).id)
    .executeTakeFirstOrThrow();
  const expectedBody =
    `{"id":"${row.id}","name":"Grace \u00e9","email":"${row.email}","region":null,"balance":"0.00",` +
    `"external_id":null,"metadata":{},"version":1,` +
    `"created_at":"${row.created_at.toISOString()}","updated_at":"${row.updated_at.toISOString()}"}`;
  expect(created.text).toBe(expectedBody);
  return {
    'GET /api/v1/users/{id}': transcript(user),
    'GET /api/v1/subscriptions?limit=20': sameTenant(transcript(page)),
    'GET /api/v1/subscriptions?limit=20&cursor=…': sameTenant(transcript(next)),
    // The parts that vary with the new row, in place of its values.
    'POST /api/v1/users': transcript(created)
      .replace(expectedBody, '<the row: id, name, email, region, version, created_at, updated_at>')
      .replaceAll(row.id, '<id>')
      .replace(/(content-length): \d+/i, '$1: <of the body>'),
  };
}

/**
 * A cursor names its tenant (http/pagination.ts ownerTag), which each run creates anew: the same
 * cursor with a fixed tag in its place (of the same length, so the bytes keep their count).
 */
function sameTenant(text: string): string {
  return text.replace(/"next_cursor":"([^"]+)"/, (_, cursor: string) => {
    const decoded = Buffer.from(cursor, 'base64url').toString('utf8');
    const fixed = decoded.replace(/^v3:[^:]{8}:/, 'v3:TENANT0:');
    return `"next_cursor":"${Buffer.from(fixed).toString('base64url')}"`;
  });
}

const format = (all: Record<string, string>) =>
  Object.entries(all)
    .map(([name, text]) => `=== ${name}\n${text}\n`)
    .join('\n');

describe('the CRUD answers, byte for byte', () => {
  it.each([
    ['response validation on (tests, development)', true],
    ['response validation off (production)', false],
  ])('are exactly the recorded ones, %s', async (_mode, validateResponses) => {
    const api = ctx.appWith({ validateResponses, rateLimitPerMinute: 1_000_000 });
    const actual = format(await answers(api, ctx.tenant.key));
    if (RECORD) writeFileSync(FIXTURE, actual);
    expect(existsSync(FIXTURE), `${FIXTURE} is missing: RECORD_RESPONSES=1 writes it`).toBe(true);
    expect(actual).toBe(readFileSync(FIXTURE, 'utf8'));
    expect(ctx.unexpectedErrors).toEqual([]);
  });
});
