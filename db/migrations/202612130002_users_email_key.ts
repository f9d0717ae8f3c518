// A customer found by email (GET /users?email=) through the unique index of emails: the filter
// was `lower(email) = lower($1)`, and under row-level security PostgreSQL uses a filter as an
// index condition only when its functions are leakproof (or touch no column), which lower() is
// not. So it scanned every customer of the tenant (17 ms at 23,000 customers, linear beyond).
// The lowered email is now a stored column, `email_key`, whose comparison (texteq) is
// leakproof, and the same unique index (same name, so a duplicate still answers 409) is on it.
// Adding a stored generated column rewrites the table once: a few seconds per million customers.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table users add column email_key text generated always as (lower(email)) stored`.execute(
    db,
  );
  await sql`drop index users_email_key`.execute(db);
  await sql`create unique index users_email_key on users (tenant_id, email_key)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index users_email_key`.execute(db);
  await sql`alter table users drop column email_key`.execute(db);
  await sql`create unique index users_email_key on users (tenant_id, lower(email))`.execute(db);
}
