// A subscription's versions are dated by the statement that wrote them, not by the start of its
// transaction (now()). Two transactions changing one subscription are ordered by its row lock: the
// second writes after the first commits. Dated by transaction start, the second could carry the
// earlier time (it began first), so the history said the first writer's state was the current one
// while the row held the second's, and the MRR metrics counted a state the subscription no longer
// had (seen with six concurrent writers on a loaded machine). statement_timestamp() follows the
// row lock's order. The trigger functions of 202612010002 are redefined with only that changed.
import { type Kysely, sql } from 'kysely';

async function redate(db: Kysely<any>, from: string, to: string): Promise<void> {
  for (const op of ['insert', 'update']) {
    const { rows } = await sql<{ def: string }>`
      select pg_get_functiondef(${`mrr_subscriptions_${op}`}::regproc) as def`.execute(db);
    const def = rows[0]!.def;
    const count = def.split(from).length - 1;
    if (count !== 1) throw new Error(`mrr_subscriptions_${op}: expected one ${from}, found ${count}`);
    await sql.raw(def.replace(from, to)).execute(db);
  }
}

export async function up(db: Kysely<any>): Promise<void> {
  await redate(db, 'now()', 'statement_timestamp()');
}

export async function down(db: Kysely<any>): Promise<void> {
  await redate(db, 'statement_timestamp()', 'now()');
}
