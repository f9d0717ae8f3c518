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

  it('does not serve TypeScript declarations, however the path is spelled (analytics7, retest8 #5)', async () => {
    for (const path of [
      '/dashboard/format.d.ts',
      '/dashboard/format.d%2Ets',
      '/dashboard/format.d.t%73',
      '/dashboard/vendor/uPlot.d.ts',
    ]) {
      const res = await ctx.anonymous.get(path);
      expect([path, res.status]).toEqual([path, 404]);
      expect(res.headers['content-type']).toContain('application/problem+json');
    }
    // uPlot's script and styles still are.
    expect((await ctx.anonymous.get('/dashboard/vendor/uPlot.iife.min.js')).status).toBe(200);
  });
});
