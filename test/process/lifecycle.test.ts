// The server as operators run it: a separate process, started and stopped with signals.
import http from 'node:http';
import net from 'node:net';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { testServerUrl, useTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factories.js';
import { holdLocks, waitForLockWaiters } from '../helpers/locks.js';
import { errorLines, spawnProcess, spawnServer, waitUntil } from '../helpers/process.js';

const ctx = useTestApp();

/** Starts src/main.ts on this test file's database and a free port; resolves with its base URL. */
async function startServer(env: Record<string, string> = {}) {
  const server = spawnServer({ DATABASE_URL: ctx.url, PORT: '0', HOST: '127.0.0.1', ...env });
  const [, pid, port] = await server.waitFor(/pid (\d+)\) on http:\/\/localhost:(\d+)/);
  return { ...server, pid: Number(pid), base: `http://127.0.0.1:${port}` };
}

const refused = (base: string) =>
  fetch(`${base}/healthz`).then(
    () => false,
    () => true,
  );

/** GET on a connection of its own (no keep-alive), so that node:cluster hands each to a worker anew. */
const statusOnNewConnection = (url: string) =>
  new Promise<number>((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });

function busyPort(): Promise<net.Server> {
  return new Promise((resolve) => {
    const blocker = net.createServer().listen(0, '127.0.0.1', () => resolve(blocker));
  });
}

describe('SIGTERM', () => {
  it('lets a request in flight finish with 200, refuses new connections, then exits 0', async () => {
    const user = await createUser(ctx);
    const server = await startServer();
    const held = await holdLocks(ctx.db, sql`select 1 from users where id = ${user.id} for update`);
    const patch = fetch(`${server.base}/api/v1/users/${user.id}`, {
      method: 'PATCH',
      headers: { Authorization: `Bearer ${ctx.tenant.key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'Finished during the drain' }),
    });
    await waitForLockWaiters(ctx.db);
    server.child.kill('SIGTERM');
    await server.waitFor(/SIGTERM: not accepting connections/);
    expect(await refused(server.base)).toBe(true);
    await held.release();

    const res = await patch;
    expect(res.status).toBe(200);
    // Running when the drain began, it closes its connection too: its client reconnects elsewhere.
    expect(res.headers.get('connection')).toBe('close');
    expect(((await res.json()) as { name: string }).name).toBe('Finished during the drain');
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(server.stdout()).toMatch(/stopped/);
    expect(errorLines(server.stderr())).toEqual([]);
  });

  it('cuts requests still running after SHUTDOWN_DRAIN_SECONDS and exits 0', async () => {
    const user = await createUser(ctx);
    const server = await startServer({ SHUTDOWN_DRAIN_SECONDS: '1' });
    const held = await holdLocks(ctx.db, sql`select 1 from users where id = ${user.id} for update`);
    const patch = fetch(`${server.base}/api/v1/users/${user.id}`, {
      method: 'PATCH',
      headers: { Authorization: `Bearer ${ctx.tenant.key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'Never' }),
    }).then(
      (res) => res.status,
      () => 'cut',
    );
    await waitForLockWaiters(ctx.db);
    const started = Date.now();
    server.child.kill('SIGTERM');
    expect(await patch).toBe('cut');
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(15_000); // 1 s of drain, not the held lock's forever
    expect(server.stdout()).toMatch(/drain timeout/);
    // Its access log line says it got no answer: no status, not the 200 never sent.
    const logged = server
      .stdout()
      .split('\n')
      .filter((line) => line.includes('"operation":"updateUser"'))
      .map((line) => JSON.parse(line) as { status: number; aborted?: boolean });
    expect(logged).toEqual([expect.objectContaining({ status: 0, aborted: true })]);
    await held.release();
  });
});

describe('WORKERS=2', () => {
  it('serves from two processes, replaces one that dies, sums their metrics, and stops them all', async () => {
    const token = 'cluster-metrics-token-0123';
    const server = await startServer({ WORKERS: '2', METRICS_TOKEN: token });
    expect(server.stdout()).toMatch(/2 server processes/);
    /** The pids in the access log of `requests` health checks (waits until all are logged). */
    const pidsServing = async (requests: number) => {
      const before = server.stdout().length;
      for (let i = 0; i < requests; i++)
        expect(await statusOnNewConnection(`${server.base}/healthz`)).toBe(200);
      const lines = await waitUntil(
        () => {
          const logged = server
            .stdout()
            .slice(before)
            .split('\n')
            .filter((line) => line.includes('"path":"/healthz"'));
          return logged.length >= requests ? logged : undefined;
        },
        { what: `${requests} access log lines` },
      );
      return new Set(lines.map((line) => (JSON.parse(line) as { pid: number }).pid));
    };
    // node:cluster deals connections out round-robin: ten connections reach both workers.
    const workers = [...(await pidsServing(10))];
    expect(workers).toHaveLength(2);
    expect(workers).not.toContain(server.pid);

    const metrics = await fetch(`${server.base}/metrics`, { headers: { Authorization: `Bearer ${token}` } });
    expect(await metrics.text()).toMatch(
      /^http_requests_total\{operation="getHealth",method="GET",status="200"\} 10$/m,
    );

    process.kill(workers[0]!, 'SIGKILL');
    await server.waitFor(/worker died; starting another/);
    // Until its replacement listens, the survivor serves alone.
    const after = await waitUntil(
      async () => {
        const serving = await pidsServing(10);
        return serving.size === 2 ? serving : undefined;
      },
      { what: 'a replacement worker serving' },
    );
    expect(after.has(workers[0]!)).toBe(false);

    server.child.kill('SIGTERM');
    expect(await server.exited).toEqual({ code: 0, signal: null });
    for (const pid of [...after]) expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
  }, 180_000);
});

describe('startup failures: one line, no stack, exit 1', () => {
  const expectOneLineFailure = async (env: Record<string, string>, pattern: RegExp) => {
    const server = spawnServer({ DATABASE_URL: ctx.url, PORT: '0', HOST: '127.0.0.1', ...env });
    const { code } = await server.exited;
    expect(code, server.stdout() + server.stderr()).toBe(1);
    const lines = errorLines(server.stderr());
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^error: /);
    expect(lines[0]).toMatch(pattern);
    expect(server.stdout()).not.toMatch(/Subscriptions API/);
    return lines[0]!;
  };

  it('a busy port fails fast: before it waits for the database', async () => {
    const blocker = await busyPort();
    const { port } = blocker.address() as net.AddressInfo;
    try {
      // An unreachable database would be retried for ten minutes: the port is checked first.
      await expectOneLineFailure(
        {
          PORT: String(port),
          DATABASE_URL: 'postgres://someone:pw@127.0.0.1:1/somewhere',
          DB_STARTUP_TIMEOUT_SECONDS: '600',
        },
        new RegExp(`127\\.0\\.0\\.1:${port} .*already in use`),
      );
    } finally {
      blocker.close();
    }
  }, 60_000);

  it('a bad setting names the setting', async () => {
    await expectOneLineFailure({ PORT: 'abc' }, /PORT must be an integer/);
    await expectOneLineFailure({ DATABASE_URL: 'mysql://x' }, /DATABASE_URL must be a postgres/);
  });

  it('an unreachable database is retried for DB_STARTUP_TIMEOUT_SECONDS, then named without its password', async () => {
    const started = Date.now();
    const line = await expectOneLineFailure(
      { DATABASE_URL: 'postgres://someone:s3cret-pw@127.0.0.1:1/somewhere', DB_STARTUP_TIMEOUT_SECONDS: '1' },
      /cannot reach the database at 127\.0\.0\.1:1\/somewhere .*after 1 s/,
    );
    expect(line).not.toMatch(/s3cret/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('a refusal that waiting cannot fix fails at once', async () => {
    const url = new URL(ctx.url);
    url.pathname = '/no_such_database';
    await expectOneLineFailure(
      { DATABASE_URL: url.toString() },
      /refused the connection: .*no_such_database/,
    );
  });
});

describe('the embedded server on EMBEDDED_PG_PORT', () => {
  // The test cluster is itself an embedded server: main.ts must reuse it only for its own data directory.
  const port = new URL(testServerUrl()).port;
  const dataDirectory = async () =>
    (await sql<{ data_directory: string }>`show data_directory`.execute(ctx.db)).rows[0]!.data_directory;

  it('is refused when it serves another data directory', async () => {
    const theirs = await dataDirectory();
    const server = spawnServer({
      EMBEDDED_PG_PORT: port,
      PGDATA_DIR: '/tmp/another-checkout/postgres',
      PORT: '0',
      HOST: '127.0.0.1',
    });
    expect((await server.exited).code).toBe(1);
    const lines = errorLines(server.stderr());
    expect(lines).toEqual([
      expect.stringContaining(`data directory is ${theirs}, not PGDATA_DIR /tmp/another-checkout/postgres`),
    ]);
  });

  it('is reused, and left running, when it serves PGDATA_DIR', async () => {
    const server = spawnServer({
      EMBEDDED_PG_PORT: port,
      PGDATA_DIR: await dataDirectory(),
      PORT: '0',
      HOST: '127.0.0.1',
    });
    await server.waitFor(new RegExp(`embedded PostgreSQL on port ${port}`));
    // Up, with its signal handlers: a SIGTERM before them (it came under load) killed it at once.
    await server.waitFor(/pid \d+\) on http:\/\/localhost:\d+/);
    server.child.kill('SIGTERM');
    expect((await server.exited).code).toBe(0);
    expect((await sql<{ one: number }>`select 1 as one`.execute(ctx.db)).rows[0]?.one).toBe(1);
  });
});

describe('make', () => {
  it('start passes SIGTERM on to the server: nothing is left running', async () => {
    const make = spawnProcess('make', ['--no-print-directory', 'start'], {
      DATABASE_URL: ctx.url,
      PORT: '0',
      HOST: '127.0.0.1',
    });
    const [, pid, port] = await make.waitFor(/pid (\d+)\) on http:\/\/localhost:(\d+)/);
    make.child.kill('SIGTERM');
    await make.exited;
    await waitUntil(
      () => {
        try {
          process.kill(Number(pid), 0);
          return undefined;
        } catch (error) {
          return (error as NodeJS.ErrnoException).code === 'ESRCH' ? true : undefined;
        }
      },
      { what: `the server (pid ${pid}) to exit` },
    );
    expect(await refused(`http://127.0.0.1:${port}`)).toBe(true);
    expect(make.stdout()).toMatch(/stopped/);
  });

  it('refuses to install with npm older than 11', async () => {
    const fakeNpm = spawnProcess(
      'bash',
      ['-c', 'mkdir -p "$D" && printf "#!/bin/sh\\necho 10.9.2\\n" > "$D/npm" && chmod +x "$D/npm"'],
      {
        D: '.data/fake-npm',
      },
    );
    expect((await fakeNpm.exited).code).toBe(0);
    const make = spawnProcess('make', ['-B', '--no-print-directory', 'install'], {
      PATH: `${process.cwd()}/.data/fake-npm:${process.env.PATH}`,
    });
    expect((await make.exited).code).not.toBe(0);
    expect(make.stderr()).toMatch(/npm 10\.9\.2 is too old: npm 11 or later is needed/);
  });
});
