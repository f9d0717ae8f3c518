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
