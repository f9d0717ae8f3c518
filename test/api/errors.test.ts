// Requests that never reach a handler still get RFC 9457 problems, and write nothing.
import { describe, expect, it } from 'vitest';
import { useTestApp } from '../helpers/app.js';
import { fingerprint } from '../helpers/db-state.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();

describe('bad requests before any handler', () => {
  it('answers malformed JSON with 400 malformed-json', async () => {
    const before = await fingerprint(ctx.db);
    const res = await ctx.api
      .post('/api/v1/users')
      .set('Content-Type', 'application/json')
      .send('{"name": "A",');
    expectProblem(res, 400, 'malformed-json');
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('answers a body that is not JSON with 415', async () => {
    const before = await fingerprint(ctx.db);
    const res = await ctx.api
      .post('/api/v1/users')
      .set('Content-Type', 'text/plain')
      .send('name=A&email=a@b.c');
    expectProblem(res, 415, 'unsupported-media-type');
    const form = await ctx.api.post('/api/v1/features').type('form').send({ name: 'x' });
    expectProblem(form, 415, 'unsupported-media-type');
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('answers a missing body with 400, or 415 when it has no content type either', async () => {
    const empty = await ctx.api.post('/api/v1/users').set('Content-Type', 'application/json');
    expectProblem(empty, 400, 'validation-error');
    expectProblem(await ctx.api.post('/api/v1/users'), 415, 'unsupported-media-type');
  });

  it('answers a body over 100kb with 413', async () => {
    const before = await fingerprint(ctx.db);
    const res = await ctx.api
      .post('/api/v1/features')
      .send({ name: 'big', description: 'x'.repeat(150_000) });
    expectProblem(res, 413, 'payload-too-large');
    expect(await fingerprint(ctx.db)).toEqual(before);
  });

  it('answers an unknown route with 404 not-found', async () => {
    expectProblem(await ctx.api.get('/api/v1/nowhere'), 404, 'not-found');
    expectProblem(await ctx.api.get('/nope'), 404, 'not-found');
  });

  it('answers a known route with the wrong method with 405 and Allow', async () => {
    const res = await ctx.api.put('/api/v1/users');
    expectProblem(res, 405, 'method-not-allowed');
    expect(res.headers.allow).toBe('GET, HEAD, POST');
  });

  it('logged no unexpected error in this file', () => {
    expect(ctx.unexpectedErrors).toEqual([]);
  });
});
