// How far one advance may move a test clock: at most 5 calendar years, to the millisecond, as
// openapi.yaml says, and never past 2100; further is 422 problem+json naming frozen_time, and
// changes nothing.
import { describe, expect, it } from 'vitest';
import type { Schemas } from '../../src/contract.js';
import { useTestApp } from '../helpers/app.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();

async function clockAt(frozen_time: string): Promise<Schemas['TestClock']> {
  const res = await ctx.api.post('/api/v1/test-clocks').send({ name: 'limit', frozen_time });
  expect(res.status, res.text).toBe(201);
  return res.body as Schemas['TestClock'];
}

const advance = (clock: Schemas['TestClock'], frozen_time: string) =>
  ctx.api.post(`/api/v1/test-clocks/${clock.id}/advance`).send({ frozen_time });

describe('POST /test-clocks/{id}/advance', () => {
  it.each([
    // [clock time, the latest time it may be advanced to]
    ['2026-03-15T10:00:00.000Z', '2031-03-15T10:00:00.000Z'],
    // Across two leap days (2028, 2032): still the same date, not 5 × 365 days.
    ['2027-12-31T23:59:59.999Z', '2032-12-31T23:59:59.999Z'],
    // From a leap day: 28 February five years on.
    ['2028-02-29T12:30:00.000Z', '2033-02-28T12:30:00.000Z'],
  ])('lets a clock at %s go as far as %s, and not 1 ms further', async (from, latest) => {
    const beyond = new Date(Date.parse(latest) + 1).toISOString();
    const refused = await clockAt(from);
    const problem = expectProblem(await advance(refused, beyond), 422, 'unprocessable');
    expect(problem.errors).toEqual([
      {
        location: 'body',
        field: '/frozen_time',
        message: `must be at most 5 years after the clock's time, ${latest} at the latest`,
      },
    ]);
    // A day further, which 5 × 366 days used to allow, is refused too.
    const dayLater = new Date(Date.parse(latest) + 86_400_000).toISOString();
    expectProblem(await advance(refused, dayLater), 422, 'unprocessable');
    const unchanged = (await ctx.api.get(`/api/v1/test-clocks/${refused.id}`)).body as Schemas['TestClock'];
    expect(unchanged).toMatchObject({ frozen_time: from, status: 'ready', version: 1 });

    const accepted = await advance(await clockAt(from), latest);
    expect(accepted.status, accepted.text).toBe(202);
    expect(accepted.body).toMatchObject({ frozen_time: latest, status: 'advancing' });
  });

  it('keeps a clock within the years 2000 to 2100, where clocks start', async () => {
    const late = await clockAt('2099-06-01T00:00:00.000Z');
    const problem = expectProblem(await advance(late, '2101-01-01T00:00:00.000Z'), 422, 'unprocessable');
    expect(problem.errors).toEqual([
      { location: 'body', field: '/frozen_time', message: 'must be in the years 2000 to 2100' },
    ]);
    const unchanged = (await ctx.api.get(`/api/v1/test-clocks/${late.id}`)).body as Schemas['TestClock'];
    expect(unchanged).toMatchObject({ frozen_time: '2099-06-01T00:00:00.000Z', version: 1 });
    const lastMoment = await advance(late, '2100-12-31T23:59:59.999Z');
    expect(lastMoment.status, lastMoment.text).toBe(202);
    expectProblem(
      await ctx.api
        .post('/api/v1/test-clocks')
        .send({ name: 'too late', frozen_time: '2101-01-01T00:00:00Z' }),
      422,
      'unprocessable',
    );
  });

  it('logged no unexpected error in this file', () => {
    expect(ctx.unexpectedErrors).toEqual([]);
  });
});
