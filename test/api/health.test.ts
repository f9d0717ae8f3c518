import { describe, expect, it } from 'vitest';
import supertest from 'supertest';
import { createApp } from '../../src/app.js';
import { createDb } from '../../src/database/connection.js';
import { useTestApp } from '../helpers/app.js';
import { expectProblem } from '../helpers/problems.js';

const ctx = useTestApp();

describe('GET /healthz', () => {
  it('answers ok', async () => {
    const res = await ctx.api.get('/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('answers any other method 405 problem+json with Allow, OPTIONS too', async () => {
    for (const path of ['/healthz', '/readyz']) {
      for (const method of ['options', 'post'] as const) {
        const res = await ctx.api[method](path);
        expectProblem(res, 405, 'method-not-allowed');
        expect(res.headers.allow, `${method} ${path}`).toBe('GET, HEAD');
      }
    }
  });
});

describe('GET /readyz', () => {
  it('answers ok when the database answers', async () => {
    const res = await ctx.api.get('/readyz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('answers 503 problem+json when the database is unreachable, while /healthz stays ok', async () => {
    // Port 1 on loopback: nothing listens there, so every connection is refused at once.
    const db = createDb('postgres://nobody:nothing@127.0.0.1:1/none', { poolSize: 1 });
    const app = supertest(createApp({ db, validateResponses: true }));
    try {
      expectProblem(await app.get('/readyz'), 503, 'service-unavailable');
      expect((await app.get('/healthz')).status).toBe(200);
    } finally {
      await db.destroy();
    }
  });
});

describe('HEAD', () => {
  it('answers wherever GET does, with the GET headers and no body', async () => {
    for (const path of ['/healthz', '/readyz', '/api/v1/users', '/openapi.json']) {
      const get = await ctx.api.get(path);
      const head = await ctx.api.head(path);
      expect(head.status, path).toBe(200);
      expect(head.text ?? '', path).toBe('');
      expect(head.headers['content-length'], path).toBe(get.headers['content-length']);
      expect(head.headers['content-type'], path).toBe(get.headers['content-type']);
    }
  });

  it('needs a key where GET does, and answers 404 for what GET does not find', async () => {
    const anonymous = await ctx.anonymous.head('/api/v1/users');
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['www-authenticate']).toBe('Bearer');
    expect((await ctx.api.head('/api/v1/users/0193a6a2-7c4e-7d1a-9b1e-3f2c4d5e6f70')).status).toBe(404);
  });

  it('is listed in Allow beside GET', async () => {
    const res = await ctx.api.delete('/healthz');
    expectProblem(res, 405, 'method-not-allowed');
    expect(res.headers.allow).toBe('GET, HEAD');
  });
});

describe('the published contract', () => {
  it('serves openapi.yaml, openapi.json and Swagger UI at /docs', async () => {
    const yaml = await ctx.api.get('/openapi.yaml');
    expect(yaml.status).toBe(200);
    expect(yaml.headers['content-type']).toMatch(/yaml/);
    expect(yaml.text).toMatch(/^openapi: 3\.1\.0/);

    const json = await ctx.api.get('/openapi.json');
    expect(json.status).toBe(200);
    expect(json.body).toMatchObject({ openapi: '3.1.0', info: { title: 'Subscriptions API' } });

    // Also beside the docs, where generators are often pointed (partner2: it answered the page).
    const besideDocs = await ctx.api.get('/docs/openapi.json');
    expect(besideDocs.headers['content-type']).toMatch(/json/);
    expect(besideDocs.body).toEqual(json.body);
    expect((await ctx.api.get('/docs/openapi.yaml')).text).toBe(yaml.text);

    const docs = await ctx.api.get('/docs/');
    expect(docs.status).toBe(200);
    // And what the page loads: its init script and Swagger UI's files.
    for (const asset of [
      '/docs/swagger-ui-init.js',
      '/docs/swagger-ui-bundle.js',
      '/docs/swagger-ui-standalone-preset.js',
      '/docs/swagger-ui.css',
      '/docs/favicon-16x16.png',
      '/docs/favicon-32x32.png',
    ])
      expect([asset, (await ctx.api.get(asset)).status]).toEqual([asset, 200]);
    expect((await ctx.api.get('/docs')).status).toBe(301);
    expect(docs.text).toContain('swagger-ui');
    // Nothing stray in its styles (swagger-ui-express printed an unset customCss as "undefined").
    expect(docs.text).not.toContain('undefined');
  });

  it('answers their paths with a trailing slash as any unknown path, 404 (retest8 #12)', async () => {
    for (const path of ['/healthz/', '/readyz/', '/openapi.json/', '/openapi.yaml/']) {
      expectProblem(await ctx.anonymous.get(path), 404, 'not-found');
      expectProblem(await ctx.anonymous.post(path).send({}), 404, 'not-found');
    }
  });

  it('answers another method 404 where GET finds no file, as GET does (retest9 #4, retest8 #13, retest10 #2)', async () => {
    for (const path of [
      '/dashboard/index.html/',
      '/dashboard/nope.js',
      '/dashboard/vendor/',
      '/dashboard/vendor/nope.js',
      '/dashboard/format.d.ts',
      '/dashboard/format.d%2Ets',
      '/dashboard/%2e%2e/app.js',
      '/docs/package.json',
      '/docs/package%2ejson',
      '/docs/%70ackage.jso%6E',
      // Swagger UI's page answered any path under /docs (retest11 #7).
      '/docs/nonexistent',
      '/docs/a/b/c.html',
      '/docs/%2e%2e/package.json',
      // Only the files the page loads (retest12 #1, #2).
      '/docs/index.html',
      '/docs/swagger-initializer.js',
      '/docs/index.js',
      '/docs/README.md',
      '/docs/swagger-ui-bundle.js.map',
      '/docs//swagger-ui.css',
      '/docs/%2fswagger-ui.css',
      '/docs/swagger-ui%2ecss',
    ]) {
      for (const method of ['get', 'post', 'delete'] as const) {
        const res = await ctx.anonymous[method](path).send(method === 'get' ? undefined : {});
        expect([path, method, res.status]).toEqual([path, method, 404]);
        expectProblem(res, 404, 'not-found');
      }
    }
  });

  it('answers another method than GET or HEAD with 405 (retest7 #4: the docs page answered any)', async () => {
    for (const path of [
      '/docs/',
      '/docs/openapi.json',
      '/openapi.yaml',
      '/openapi.json',
      '/dashboard/',
      '/dashboard/format.js',
      '/dashboard/vendor/uPlot.iife.min.js',
    ]) {
      for (const method of ['post', 'put', 'delete'] as const) {
        const res = await ctx.anonymous[method](path).send({});
        expectProblem(res, 405, 'method-not-allowed');
        expect(res.headers.allow).toBe('GET, HEAD');
      }
      expect((await ctx.anonymous.head(path)).status).toBe(200);
    }
  });
});
