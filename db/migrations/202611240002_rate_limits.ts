// Request counts per API key and rate-limit window, shared by every API process and instance.
// Each process adds its own row (instance), so processes never wait on each other's row locks;
// a key's count is the sum over instances. Unlogged: counts that a crash loses only let a key
// through a little early, and skipping the WAL keeps the once-a-second flushes cheap. No tenant
// data: a key id and numbers, so no row-level security; the app role reads and writes it.
import { type Kysely, sql } from 'kysely';

const APP_ROLE = 'subscriptions_app';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create unlogged table rate_limit_hits (
      key text not null,
      window_start timestamptz not null,
      instance uuid not null,
      hits bigint not null check (hits >= 0),
      primary key (key, window_start, instance)
    )`.execute(db);
  // Serves the purge of old windows.
  await sql`create index rate_limit_hits_window_start_idx on rate_limit_hits (window_start)`.execute(db);
  await sql`grant select, insert, update, delete on rate_limit_hits to ${sql.id(APP_ROLE)}`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table rate_limit_hits`.execute(db);
}
