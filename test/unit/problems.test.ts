// A value PostgreSQL cannot store (SQLSTATE class 22) that reached it anyway: the client gets 422
// (its request was valid but broke a limit), and the gap is logged as an error, which fails the
// test suite wherever it happens: every such limit belongs in openapi.yaml or in a service.
import express from 'express';
import pg from 'pg';
import supertest from 'supertest';
import { describe, expect, it } from 'vitest';
import { problemHandler } from '../../src/http/problems.js';
import { captureLogs } from '../helpers/logs.js';

function overflow(): pg.DatabaseError {
  const error = new pg.DatabaseError('numeric field overflow', 0, 'error');
  error.code = '22003';
  return error;
}

describe('a database data exception', () => {
  it('answers 422 unprocessable, never a 400, and logs the gap as an error', async () => {
    const logs = captureLogs();
    const app = express();
    app.post('/thing', () => {
      throw overflow();
    });
    app.use(problemHandler(logs.logger));
    const res = await supertest(app).post('/thing');
    expect(res.status).toBe(422);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(res.text)).toMatchObject({ type: '/problems/unprocessable', status: 422 });
    expect(logs.errors).toEqual([expect.objectContaining({ msg: expect.stringContaining('overflowed') })]);
  });
});

describe('a database that refuses new connections', () => {
  it.each([
    ['3D000', 'database "subscriptions" does not exist'],
    ['28P01', 'password authentication failed for user "subscriptions_app"'],
    ['57P01', 'terminating connection due to administrator command'],
  ])('answers %s with 503 and Retry-After, as a database away (ops6 #2)', async (code, message) => {
    const logs = captureLogs();
    const app = express();
    app.get('/thing', () => {
      const error = new pg.DatabaseError(message, 0, 'error');
      error.code = code;
      throw error;
    });
    app.use(problemHandler(logs.logger));
    const res = await supertest(app).get('/thing');
    expect([res.status, res.headers['retry-after']]).toEqual([503, '5']);
    expect(JSON.parse(res.text)).toMatchObject({ type: '/problems/service-unavailable' });
  });
});
