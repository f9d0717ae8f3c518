// Prepaid credits under load (issue 23): hold + capture pairs over HTTP (captures with an Idempotency-Key), 32 clients, for
// BENCH_SECONDS (default 10) each way: all on one hot wallet, then spread over 32 wallets.
// In a scratch database of its own (the ledger can never be deleted).
// BENCH_ONLY=wallets make bench.
import os from 'node:os';
import { KeptAliveClient } from './http-client.js';
import { sql } from 'kysely';
import { createDb } from '../src/database/connection.js';
import { migrateToLatest } from '../src/database/migrator.js';
import { issueApiKey } from '../src/services/api-keys.js';
import { inTenant } from '../src/services/context.js';
import { createGrant, createWallet } from '../src/services/wallets.js';
import { createTenant } from '../src/services/tenants.js';
import { createUser } from '../src/services/users.js';

type StartServer = (
  script: string,
  env: Record<string, string>,
) => Promise<{ base: string; stop(): Promise<void> }>;

const at = (sorted: number[], p: number) =>
  sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;

export async function benchWallets(
  serverUrl: string,
  startServer: StartServer,
  seconds: number,
): Promise<string> {
  const name = `bench_wallets_${process.pid}`;
  const admin = createDb(serverUrl, { poolSize: 1 });
  await sql.raw(`create database ${name}`).execute(admin);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const owner = createDb(url.toString(), { poolSize: 4 });
  try {
    await migrateToLatest(owner);
    const ctx = { db: owner };
    const { tenant } = await createTenant(ctx, 'wallets bench');
    const system = { tenantId: tenant.id, keyId: 'system' };
    const { key } = await inTenant(ctx, system, (tx) =>
      issueApiKey(tx, { name: 'bench', role: 'admin', expiresAt: null }),
    );
    const walletIds: string[] = [];
    for (let i = 0; i < 32; i++) {
      const user = await createUser(ctx, system, { name: `Customer ${i}`, email: `c${i}@example.com` });
      if (user.kind !== 'created') throw new Error(`user: ${user.kind}`);
      const wallet = await createWallet(ctx, system, { user_id: user.user.id, name: 'credits' });
      if (wallet.kind !== 'created') throw new Error(`wallet: ${wallet.kind}`);
      await createGrant(ctx, system, wallet.wallet.wallet.id, { credits: '1000000000' });
      walletIds.push(wallet.wallet.wallet.id);
    }
    const server = await startServer('src/main.ts', {
      DATABASE_URL: url.toString(),
      NODE_ENV: 'production',
      WORKERS: '1',
      JOBS: 'off',
      RATE_LIMIT_PER_MINUTE: '1000000',
    });
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    try {
      console.log(`wallets: 32 clients on one wallet for ${seconds} s`);
      const hot = await pairs(server.base, headers, () => walletIds[0]!, seconds);
      console.log(`wallets: 32 clients over 32 wallets for ${seconds} s`);
      const spread = await pairs(server.base, headers, (client) => walletIds[client]!, seconds);
      return [
        `Prepaid credits, ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores (\`BENCH_ONLY=wallets make bench\`): hold + capture pairs over HTTP (captures with an Idempotency-Key), 32 clients, ${seconds} s each, API in production mode`,
        '',
        '| what | pairs/s | pair p95 | failed | target |',
        '| --- | --- | --- | --- | --- |',
        `| one hot wallet | ${hot.perSecond.toFixed(0)} | ${hot.p95.toFixed(1)} ms | ${hot.failures} | ≥ 300/s |`,
        `| 32 wallets, one per client | ${spread.perSecond.toFixed(0)} | ${spread.p95.toFixed(1)} ms | ${spread.failures} | ≥ 1,500/s |`,
      ].join('\n');
    } finally {
      await server.stop();
    }
  } finally {
    await owner.destroy();
    await sql.raw(`drop database if exists ${name} with (force)`).execute(admin);
    await admin.destroy();
  }
}

/**
 * 32 clients each holding 10 credits and capturing 7 of them (with an Idempotency-Key), in a
 * loop, for `seconds`.
 */
async function pairs(
  base: string,
  headers: Record<string, string>,
  walletOf: (client: number) => string,
  seconds: number,
) {
  const http = new KeptAliveClient(base, headers, 32);
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  const times: number[] = [];
  let done = 0;
  let failures = 0;
  await Promise.all(
    Array.from({ length: 32 }, async (_, client) => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        const held = await http.post(
          `/api/v1/wallets/${walletOf(client)}/holds`,
          '{"credits": "10", "expires_in": 300}',
        );
        if (held.status !== 201) {
          failures++;
          continue;
        }
        const hold = JSON.parse(held.body) as { id: string };
        // As a client that retries safely would: the capture carries an Idempotency-Key.
        const captured = await http.post(`/api/v1/holds/${hold.id}/capture`, '{"credits": "7"}', {
          'idempotency-key': `capture-${hold.id}`,
        });
        if (captured.status !== 200) failures++;
        else {
          done++;
          times.push(performance.now() - t0);
        }
      }
    }),
  );
  http.close();
  times.sort((a, b) => a - b);
  return { perSecond: done / ((performance.now() - started) / 1000), p95: at(times, 95), failures };
}
