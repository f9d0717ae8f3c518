// Frozen in time: depends on nothing in src/, so later code changes never rewrite history.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. Time-ordered ids keep
  // btree inserts at the right edge of the index and make "newest first" an index scan.
  await sql`
    create function uuid_generate_v7() returns uuid
    language sql volatile parallel safe as $$
      select encode(
        set_bit(set_bit(
          overlay(uuid_send(gen_random_uuid())
                  placing substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)
                  from 1 for 6),
          52, 1), 53, 1),
        'hex')::uuid
    $$`.execute(db);

  await db.schema
    .createTable('users')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`uuid_generate_v7()`))
    .addColumn('name', 'text', (c) => c.notNull().check(sql`length(btrim(name)) between 1 and 200`))
    .addColumn('email', 'text', (c) =>
      c.notNull().check(sql`length(email) between 3 and 320 and email like '%_@_%'`),
    )
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  // Emails are unique case-insensitively; also serves GET /users?email=.
  await sql`create unique index users_email_key on users (lower(email))`.execute(db);

  await db.schema
    .createTable('features')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`uuid_generate_v7()`))
    .addColumn('name', 'text', (c) =>
      c
        .notNull()
        .unique()
        .check(sql`length(btrim(name)) between 1 and 200`),
    )
    .addColumn('description', 'text', (c) => c.check(sql`length(description) <= 2000`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('subscriptions')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`uuid_generate_v7()`))
    // restrict: a user with billing history cannot vanish (DELETE /users answers 409).
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('users.id').onDelete('restrict'))
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('trialing', 'active', 'past_due', 'canceled')`),
    )
    .addColumn('plan_cost', sql`numeric(12, 2)`, (c) => c.notNull().check(sql`plan_cost >= 0`))
    .addColumn('billing_interval', 'text', (c) =>
      c
        .notNull()
        .defaultTo('month')
        .check(sql`billing_interval in ('month', 'year')`),
    )
    .addColumn('start_date', 'date', (c) => c.notNull())
    .addColumn('end_date', 'date')
    .addColumn('canceled_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('subscriptions_end_date_check', sql`end_date >= start_date`)
    .addCheckConstraint(
      'subscriptions_canceled_at_check',
      sql`(status = 'canceled') = (canceled_at is not null)`,
    )
    .execute();
  // Serves the foreign key check on user deletion and GET /subscriptions?user_id= (newest first).
  await sql`create index subscriptions_user_id_id_idx on subscriptions (user_id, id)`.execute(db);

  // canceled_at follows status: stamped when a subscription becomes canceled (unless the writer
  // gives the historical time), kept while it stays canceled, cleared when it is reactivated.
  await sql`
    create function subscriptions_stamp_canceled_at() returns trigger
    language plpgsql as $$
    begin
      if new.status = 'canceled' then
        if tg_op = 'UPDATE' and old.status = 'canceled' then
          new.canceled_at := old.canceled_at;
        else
          new.canceled_at := coalesce(new.canceled_at, now());
        end if;
      else
        new.canceled_at := null;
      end if;
      return new;
    end
    $$`.execute(db);
  await sql`
    create trigger subscriptions_stamp_canceled_at
    before insert or update of status on subscriptions
    for each row execute function subscriptions_stamp_canceled_at()`.execute(db);

  await db.schema
    .createTable('subscription_features')
    // A subscription's links go with it; a linked feature cannot be deleted (409).
    .addColumn('subscription_id', 'uuid', (c) =>
      c.notNull().references('subscriptions.id').onDelete('cascade'),
    )
    .addColumn('feature_id', 'uuid', (c) => c.notNull().references('features.id').onDelete('restrict'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('subscription_features_pkey', ['subscription_id', 'feature_id'])
    .execute();
  // Serves the foreign key check when a feature is deleted.
  await sql`create index subscription_features_feature_id_idx on subscription_features (feature_id)`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('subscription_features').execute();
  await db.schema.dropTable('subscriptions').execute();
  await sql`drop function subscriptions_stamp_canceled_at()`.execute(db);
  await db.schema.dropTable('features').execute();
  await db.schema.dropTable('users').execute();
  await sql`drop function uuid_generate_v7()`.execute(db);
}
