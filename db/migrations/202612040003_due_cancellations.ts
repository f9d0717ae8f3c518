// Cancellations now due, as one function: almost every call finds none, and an UPDATE that
// changes no row still fires the subscriptions' statement triggers (three, with their transition
// tables) and plans a join. Every read of subscriptions, metrics and analytics performs the due
// cancellations first, so the check runs first, as an index probe, and the UPDATE only when a
// subscription is due. SECURITY INVOKER (the default): row-level security scopes both to the
// caller's tenant, as it scoped the statement this replaces (src/queries/subscriptions.ts).
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function perform_due_cancellations()
    returns table (subscription subscriptions, previous_status text)
    language plpgsql volatile as $$
    #variable_conflict use_column
    begin
      -- Subscriptions on a test clock are canceled by the clock's time (billing/due-work.ts).
      if not exists (
        select from subscriptions
        where cancel_at <= now() and status <> 'canceled' and test_clock_id is null
      ) then
        return;
      end if;
      return query
        with due as (
          select id, status from subscriptions
          where cancel_at <= now() and status <> 'canceled' and test_clock_id is null
          order by id
          for update
        )
        update subscriptions as s set status = 'canceled', canceled_at = s.cancel_at, updated_at = now()
        from due where s.id = due.id
        returning s, due.status;
    end
    $$`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop function perform_due_cancellations()`.execute(db);
}
