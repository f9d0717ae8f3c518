import { expect } from 'vitest';
import type { Response } from 'supertest';
import type { Schemas } from '../../src/contract.js';

/** Asserts an RFC 9457 problem of this status and type, and returns its body. */
export function expectProblem(res: Response, status: number, type: string): Schemas['Problem'] {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = JSON.parse(res.text) as Schemas['Problem'];
  expect(body).toMatchObject({ type: `/problems/${type}`, status, title: expect.any(String) });
  expect(body.detail).toEqual(expect.any(String));
  for (const error of body.errors ?? []) {
    expect(error).toMatchObject({
      location: expect.stringMatching(/^(body|path|query|headers)$/),
      message: expect.any(String),
    });
  }
  return body;
}
