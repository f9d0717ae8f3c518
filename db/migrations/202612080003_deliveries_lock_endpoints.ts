// The outbox trigger key-share locks the endpoints it writes deliveries for, as their foreign key
// does. Without it, an endpoint deleted between the trigger's read and its insert failed the
// foreign key, so any write recording an event for it (a POST /users, a worker's renewal) answered
// 409 "still referenced" while an admin deleted an endpoint. Locked first, an endpoint deleted
// meanwhile is skipped (READ COMMITTED re-reads a row it waited for), and a delete waits for the
// write's commit, whose deliveries its cascade then removes.
import { type Kysely, sql } from 'kysely';

const body = (endpoints: string) =>
  sql.raw(`
    create or replace function events_to_webhook_deliveries() returns trigger language plpgsql as $$
    declare
      tenant uuid;
      made bigint;
      total bigint := 0;
    begin
      for tenant in select distinct tenant_id from new_events loop
        continue when not exists (
          select from webhook_endpoints where tenant_id = tenant and status = 'enabled');
        insert into webhook_deliveries (tenant_id, endpoint_id, event_id, event_xid, event_seq, event_type)
        select e.tenant_id, w.id, e.id, e.xid, e.seq, e.type
        from new_events e
        join ${endpoints} w on w.tenant_id = e.tenant_id and w.status = 'enabled'
          and (e.type = any (w.enabled_events) or '*' = any (w.enabled_events))
        where e.tenant_id = tenant;
        get diagnostics made = row_count;
        total := total + made;
      end loop;
      if total > 0 then
        perform pg_notify('webhook_deliveries', total::text);
      end if;
      return null;
    end $$`);

export async function up(db: Kysely<any>): Promise<void> {
  await body(`(select id, tenant_id, status, enabled_events from webhook_endpoints
          where tenant_id = tenant and status = 'enabled' for key share)`).execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await body('webhook_endpoints').execute(db);
}
