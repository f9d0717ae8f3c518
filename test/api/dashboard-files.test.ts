// The dashboard's static files: what a browser needs, with its media types, and nothing else.
import { describe, expect, it } from 'vitest';
import { useTestApp } from '../helpers/app.js';

const ctx = useTestApp();

describe('GET /dashboard/*', () => {
  it('serves the page, its script and its style with their media types', async () => {
    for (const [file, type] of [
      ['', 'text/html'],
      ['dashboard.js', 'text/javascript'],
      ['format.js', 'text/javascript'],
      ['dashboard.css', 'text/css'],
    ] as const) {
      const res = await ctx.anonymous.get(`/dashboard/${file}`);
      expect([file, res.status, res.headers['content-type']]).toEqual([
        file,
        200,
        expect.stringContaining(type),
      ]);
    }
  });

  it('does not serve its TypeScript declarations, which are for the tests (analytics7)', async () => {
    const res = await ctx.anonymous.get('/dashboard/format.d.ts');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toContain('application/problem+json');
  });
});
