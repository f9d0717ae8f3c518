// The floor: what one query per request costs with nothing else, so `make bench` can report this
// API's throughput as a share of it. Plain node:http and one pg.Pool: no framework, no auth, no
// validation, no tenant transaction. Connect with a superuser URL (superusers bypass the forced
// row-level security); every query filters by the given tenant explicitly instead.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import pg from 'pg';

export interface FloorOptions {
  databaseUrl: string;
  tenantId: string;
  poolSize?: number;
  port?: number;
}

export interface RunningFloor {
  url: string;
  close(): Promise<void>;
}

// Named, so each pooled connection prepares them once.
const GET_USER = {
  name: 'floor_get_user',
  text: 'select id, name, email, created_at, updated_at from users where id = $1 and tenant_id = $2',
};
const LIST_SUBSCRIPTIONS = {
  name: 'floor_list_subscriptions',
  text: `select id, user_id, status, plan_cost, billing_interval, start_date, end_date, canceled_at, created_at, updated_at
         from subscriptions where tenant_id = $1 order by id desc limit $2`,
};
const CREATE_USER = {
  name: 'floor_create_user',
  text: 'insert into users (tenant_id, name, email) values ($1, $2, $3) returning id, name, email, created_at, updated_at',
};

const USER_PATH = /^\/users\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}

async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export async function startFloor(options: FloorOptions): Promise<RunningFloor> {
  const { tenantId } = options;
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolSize ?? 10 });
  pool.on('error', () => {}); // an idle connection that drops is replaced on next use

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://floor');
    const userId = req.method === 'GET' ? USER_PATH.exec(url.pathname)?.[1] : undefined;
    if (userId) {
      const { rows } = await pool.query({ ...GET_USER, values: [userId, tenantId] });
      return send(res, rows[0] ? 200 : 404, rows[0] ?? {});
    }
    if (req.method === 'GET' && url.pathname === '/subscriptions') {
      const requested = Number(url.searchParams.get('limit') ?? 20);
      const limit = Number.isFinite(requested) ? Math.min(100, Math.max(1, Math.trunc(requested))) : 20;
      const { rows } = await pool.query({ ...LIST_SUBSCRIPTIONS, values: [tenantId, limit] });
      return send(res, 200, { data: rows, next_cursor: null });
    }
    if (req.method === 'POST' && url.pathname === '/users') {
      const input = await readJson(req);
      if (!input) return send(res, 400, {});
      try {
        const { rows } = await pool.query({ ...CREATE_USER, values: [tenantId, input.name, input.email] });
        return send(res, 201, rows[0]);
      } catch (error) {
        if ((error as { code?: unknown }).code === '23505') return send(res, 409, {});
        throw error;
      }
    }
    send(res, 404, {});
  }

  let logged = false;
  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!logged) console.error('floor: request failed (further failures are not logged):', error);
      logged = true;
      if (!res.headersSent) send(res, 500, {});
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await pool.end();
    },
  };
}

// As its own process, so it never shares a core's event loop with the bench or the API:
// node --import tsx bench/floor.ts, with FLOOR_DATABASE_URL, FLOOR_TENANT_ID and FLOOR_PORT.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { FLOOR_DATABASE_URL, FLOOR_TENANT_ID, FLOOR_PORT } = process.env;
  if (!FLOOR_DATABASE_URL || !FLOOR_TENANT_ID) throw new Error('set FLOOR_DATABASE_URL and FLOOR_TENANT_ID');
  const floor = await startFloor({
    databaseUrl: FLOOR_DATABASE_URL,
    tenantId: FLOOR_TENANT_ID,
    port: Number(FLOOR_PORT ?? 0),
  });
  console.log(`floor on ${floor.url}`);
  process.on('SIGTERM', () => void floor.close().then(() => process.exit(0)));
}
