// A rate made with an end (a temporary rate) can be changed before that end, as an open one is:
// superseded, it is closed earlier and its successor keeps the end (tax1 F1). The trigger that
// keeps rates from being edited lets that close through too: an end set on an open rate, or moved
// earlier on a closed one, nothing else changed.
import { type Kysely, sql } from 'kysely';

const CLOSE_ONLY = (closes: string) => `
  create or replace function tax_rates_close_only() returns trigger language plpgsql as $$
  begin
    if ${closes}
       and (new.id, new.tenant_id, new.code, new.name, new.percentage, new.region, new.effective_from, new.created_at)
           is not distinct from
           (old.id, old.tenant_id, old.code, old.name, old.percentage, old.region, old.effective_from, old.created_at) then
      return new;
    end if;
    raise exception 'a tax rate is never edited: close it and open another' using errcode = 'BIL02';
  end $$`;

export async function up(db: Kysely<any>): Promise<void> {
  await sql
    .raw(
      CLOSE_ONLY(
        'new.effective_until is not null and (old.effective_until is null or new.effective_until < old.effective_until)',
      ),
    )
    .execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql.raw(CLOSE_ONLY('old.effective_until is null and new.effective_until is not null')).execute(db);
}
