// Ready for Citus (README, "Scaling"): every table that holds tenant data would be distributed by
// tenant_id, which works only if each of its keys and references includes tenant_id. Read from
// the catalog, so a new table or constraint that forgets it fails here. api_keys would be a
// reference table (replicated to every node): a key is found by its prefix before its tenant is known.
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { useTestApp } from '../helpers/app.js';

const ctx = useTestApp();
const REFERENCE_TABLES = ['api_keys'];

describe('the schema, distributed by tenant_id', () => {
  it('has tenant_id in every primary key, unique constraint or index, and foreign key of a tenant table', async () => {
    const { rows: tables } = await sql<{ table: string }>`
      select c.relname as table from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'p')
        and exists (select from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)
      order by 1`.execute(ctx.db);
    // Every table that holds a tenant's rows: a catalog query that found none would check nothing.
    expect(tables.map((t) => t.table)).toEqual(
      expect.arrayContaining(['users', 'subscriptions', 'invoices', 'events']),
    );

    const { rows: offenders } = await sql<{ table: string; kind: string; name: string; columns: string }>`
      with tenant_tables as (
        select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind in ('r', 'p')
          and exists (select from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)
          and c.relname <> all (${REFERENCE_TABLES})
      ),
      keys as (
        -- Primary keys, unique constraints and foreign keys, by their columns.
        select con.conrelid as rel, case con.contype when 'p' then 'primary key' when 'u' then 'unique'
                 else 'foreign key' end as kind, con.conname as name, con.conkey as cols
        from pg_constraint con where con.contype in ('p', 'u', 'f') and con.conrelid in (select oid from tenant_tables)
        union all
        -- Unique indexes that are not constraints (partial ones included).
        select i.indrelid, 'unique index', ic.relname, i.indkey::int2[]
        from pg_index i join pg_class ic on ic.oid = i.indexrelid
        where i.indisunique and i.indrelid in (select oid from tenant_tables)
          and not exists (select from pg_constraint con where con.conindid = i.indexrelid)
      )
      select k.rel::regclass::text as table, k.kind, k.name,
             (select string_agg(a.attname, ', ') from pg_attribute a where a.attrelid = k.rel and a.attnum = any (k.cols)) as columns
      from keys k
      where not exists (select from pg_attribute a where a.attrelid = k.rel and a.attnum = any (k.cols) and a.attname = 'tenant_id')
      order by 1, 3`.execute(ctx.db);
    expect(offenders).toEqual([]);
  });
});
