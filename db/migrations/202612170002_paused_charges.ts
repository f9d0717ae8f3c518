// subscriptions.paused_charges: the pending charges a pause shortened, as they were, with the
// price the subscription was on (its label) and the period. A pause of a period invoiced credits
// the days left at the price that paid them; days paid by a charge still pending are not
// credited: the charge is shortened to end on the pause day. A resume in the same period, on the
// same price, brings those charges back for the days from the resume on, so the days stay paid as
// they were (a pause and a resume on the same day leave nothing at all). Without this record the
// resume charged the price in force instead, and invoiced it at once: after a move made with
// `none`, that was the new price for days the pending charge had paid at the old one (proration8
// #1, #2). Internal: no response shows it. Null when the pause shortened nothing.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table subscriptions add column paused_charges jsonb`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table subscriptions drop column paused_charges`.execute(db);
}
