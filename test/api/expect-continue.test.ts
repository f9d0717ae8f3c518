// Expect: 100-continue (retest7 #3): the body is asked for only once the request is admitted and
// its announced length fits; a request refused before gets its answer without sending the body.
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { useTestApp } from '../helpers/app.js';

const ctx = useTestApp();

interface Outcome {
  continued: boolean;
  status: number;
  body: string;
}

/** Sends the headers only, and the body once (if ever) the server answers 100 Continue. */
async function sendExpecting(path: string, body: string, headers: Record<string, string>, length?: number) {
  const url = new URL(path, await ctx.baseUrl());
  return new Promise<Outcome>((resolve, reject) => {
    let continued = false;
    const req = http.request(url, {
      method: 'POST',
      agent: false,
      headers: {
        'Content-Type': 'application/json',
        'Content-Length': String(length ?? Buffer.byteLength(body)),
        Expect: '100-continue',
        ...headers,
      },
    });
    req.on('continue', () => {
      continued = true;
      req.end(body);
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        resolve({ continued, status: res.statusCode ?? 0, body: text });
        req.destroy();
      });
    });
    req.on('error', (error) => (continued ? undefined : reject(error)));
    req.flushHeaders();
  });
}

describe('Expect: 100-continue', () => {
  const auth = () => ({ Authorization: `Bearer ${ctx.tenant.key}` });
  const user = JSON.stringify({ name: 'Continued', email: `continue-${Date.now()}@example.com` });

  it('asks for the body of an admitted request whose length fits, and answers it', async () => {
    const res = await sendExpecting('/api/v1/users', user, auth());
    expect(res).toMatchObject({ continued: true, status: 201 });
    expect(JSON.parse(res.body)).toMatchObject({ name: 'Continued' });
  });

  it('answers 401, 404 and 413 without asking for the body', async () => {
    const big = 3 * 1024 * 1024;
    expect(await sendExpecting('/api/v1/users', '', {}, big)).toMatchObject({
      continued: false,
      status: 401,
    });
    expect(await sendExpecting('/api/v1/nowhere', '', auth(), big)).toMatchObject({
      continued: false,
      status: 404,
    });
    const tooLarge = await sendExpecting('/api/v1/users', '', auth(), big);
    expect(tooLarge).toMatchObject({ continued: false, status: 413 });
    expect(JSON.parse(tooLarge.body)).toMatchObject({ type: '/problems/payload-too-large' });
    // A Content-Encoding the parser cannot inflate (retest8 #10).
    const zstd = await sendExpecting('/api/v1/users', user, { ...auth(), 'Content-Encoding': 'zstd' });
    expect(zstd).toMatchObject({ continued: false, status: 415 });
    expect(JSON.parse(zstd.body)).toMatchObject({ type: '/problems/unsupported-media-type' });
  });

  it('logged no unexpected error in this file', () => {
    expect(ctx.unexpectedErrors).toEqual([]);
  });
});
