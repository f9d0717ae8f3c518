// The production build, as the Dockerfile's build stage makes it (`make build`) and its runtime stage
// runs it: compiled JavaScript under plain node (no tsx), NODE_ENV=production, on this file's database.
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestApp } from '../helpers/app.js';
import { errorLines, spawnProcess } from '../helpers/process.js';

const ctx = useTestApp();

/** A compiled entry point, as the image runs it: no --import tsx, nothing in NODE_OPTIONS. */
const production = (script: string, args: string[] = [], env: Record<string, string> = {}) =>
  spawnProcess(process.execPath, [script, ...args], {
    NODE_ENV: 'production',
    NODE_OPTIONS: undefined,
    DATABASE_URL: ctx.url,
    PORT: '0',
    HOST: '127.0.0.1',
    JOBS: 'off',
    ...env,
  });

beforeAll(async () => {
  // -o: build with the dependencies as installed; a test never reinstalls them.
  const build = spawnProcess(
    'make',
    ['--no-print-directory', '-o', 'node_modules/.package-lock.json', 'build'],
    {},
  );
  const { code } = await build.exited;
  expect(code, build.stdout() + build.stderr()).toBe(0);
}, 120_000);

describe('make build', () => {
  it('serves the API from node dist/main.js: probes, contract, dashboard, a keyed request; SIGTERM exits 0', async () => {
    // Two server processes: the cluster's workers are forked from dist/main.js too.
    const server = production('dist/main.js', [], { WORKERS: '2' });
    const [, port] = await server.waitFor(/pid \d+\) on http:\/\/localhost:(\d+)/);
    const base = `http://127.0.0.1:${port}`;

    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const contract = await fetch(`${base}/openapi.json`);
    expect(contract.status).toBe(200);
    expect(((await contract.json()) as { openapi: string }).openapi).toMatch(/^3\.1\./);
    const dashboard = await fetch(`${base}/dashboard/`);
    expect(dashboard.status).toBe(200);
    expect(await dashboard.text()).toMatch(/dashboard\.js/);
    expect((await fetch(`${base}/dashboard/vendor/uPlot.esm.js`)).status).toBe(200);

    const tenant = await ctx.newTenant();
    const headers = { Authorization: `Bearer ${tenant.key}`, 'Content-Type': 'application/json' };
    const created = await fetch(`${base}/api/v1/users`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ email: 'compiled@example.com', name: 'Compiled' }),
    });
    expect(created.status).toBe(201);
    const users = await fetch(`${base}/api/v1/users`, { headers });
    expect(users.status).toBe(200);
    expect(((await users.json()) as { data: { email: string }[] }).data.map((u) => u.email)).toEqual([
      'compiled@example.com',
    ]);

    server.child.kill('SIGTERM');
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(server.stdout()).toMatch(/stopped/);
    expect(errorLines(server.stderr())).toEqual([]);
  });

  it('runs the worker from node dist/worker-main.js; SIGTERM exits 0', async () => {
    const worker = production('dist/worker-main.js');
    await worker.waitFor(/Subscriptions API worker \(pid \d+\)/);
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    expect(errorLines(worker.stderr())).toEqual([]);
  });

  it('runs the migrate CLI from dist/src/cli/migrate.js', async () => {
    const migrate = production('dist/src/cli/migrate.js');
    expect(await migrate.exited).toEqual({ code: 0, signal: null });
    expect(migrate.stdout()).toMatch(/already up to date/);
  });
});
