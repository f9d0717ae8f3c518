// The validator's metadata middleware with its routes prepared once (src/http/route-matching.ts)
// against the validator's own, on every path and method of the contract: the same operation, the
// same parameters, the same refusals.
import express from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import supertest from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  applyPreparedMetadata,
  metadataModule,
  prepareValidatorRouteMatching,
} from '../../src/http/route-matching.js';
import { spec } from '../../src/spec.js';

type Apply = typeof metadataModule.applyOpenApiMetadata;
let made: Parameters<Apply> | undefined;

beforeAll(async () => {
  prepareValidatorRouteMatching();
  // The validator's own context and response spec, as it passes them to the middleware it makes.
  const installed = metadataModule.applyOpenApiMetadata;
  metadataModule.applyOpenApiMetadata = Object.assign(
    (...args: Parameters<Apply>) => ((made = args), installed(...args)),
    { prepared: true as const, original: installed.original },
  );
  try {
    const app = express();
    app.use(
      OpenApiValidator.middleware({
        apiSpec: structuredClone(spec) as never,
        validateRequests: true,
        validateResponses: true,
        validateSecurity: false,
      }),
    );
    await supertest(app).get('/api/v1/users');
  } finally {
    metadataModule.applyOpenApiMetadata = installed;
  }
});

/** What a metadata middleware did with a request: what it set, or what it threw. */
function outcome(middleware: ReturnType<Apply>, method: string, url: string) {
  const path = url.split('?')[0]!;
  const req = {
    method,
    url,
    originalUrl: url,
    path,
    baseUrl: '',
    params: {},
    app: { enabled: () => false },
  } as unknown as express.Request & { openapi?: unknown };
  let next = false;
  try {
    middleware(req, {} as express.Response, () => (next = true));
  } catch (error) {
    const e = error as { status?: number; message: string; headers?: unknown };
    return { threw: { status: e.status, message: e.message, headers: e.headers } };
  }
  return { next, openapi: req.openapi, params: req.params };
}

describe("the validator's route matching", () => {
  it('is installed once, in place of the original', () => {
    prepareValidatorRouteMatching();
    const installed = metadataModule.applyOpenApiMetadata;
    prepareValidatorRouteMatching();
    expect(metadataModule.applyOpenApiMetadata).toBe(installed);
    expect(installed.prepared).toBe(true);
    expect(installed.original).toBeTypeOf('function');
  });

  it('finds what the original finds, on every path and method, and refuses what it refuses', () => {
    expect(made).toBeDefined();
    const original = metadataModule.applyOpenApiMetadata.original!(...made!);
    const prepared = applyPreparedMetadata(...made!);
    const templates = Object.keys(spec.paths);
    expect(templates.length).toBeGreaterThan(50);
    const urls = templates.flatMap((template) => [
      template.replace(/\{[^}]+\}/g, 'a%20b'),
      `${template.replace(/\{[^}]+\}/g, '01a23ff9-c535-76ee-bae0-0c2c6e5ae6ef')}?limit=5`,
      template.replace(/\{[^}]+\}/g, '%E0%A4%A'), // malformed: 400 where a parameter is
    ]);
    urls.push('/api/v1/nowhere', '/api/v1/users/a/b/c/d', '/elsewhere', '/API/V1/USERS');
    let found = 0;
    for (const url of urls) {
      for (const method of ['GET', 'POST', 'PATCH', 'PUT', 'DELETE', 'HEAD', 'OPTIONS']) {
        const expected = outcome(original, method, url);
        const got = outcome(prepared, method, url);
        // A malformed escape: the same 400, naming the parameter where the original says "malformed uri'".
        if (expected.threw?.message === "malformed uri'")
          expect(got.threw, `${method} ${url}`).toMatchObject({
            status: 400,
            message: expect.stringMatching(/^The path parameter '\w+' has a malformed percent escape/),
          });
        else expect(got, `${method} ${url}`).toEqual(expected);
        if (expected.openapi) found++;
      }
    }
    // Most documented operations were found, not just refused alike.
    expect(found).toBeGreaterThan(100);
  });
});
