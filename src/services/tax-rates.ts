// Tax rates with history: a rate is never edited. Changing one closes it and opens its
// successor from a date, in one transaction; rates of one code and region never overlap.
import { sqlState } from '../database/errors.js';
import type { TaxRateRow } from '../database/schema.js';
import * as taxRates from '../queries/tax-rates.js';
import { toTaxRateResponse } from '../responses/tax-rates.js';
import { type Actor, inTenant, type Page, type ServiceContext, toPage } from './context.js';

const OVERLAP = '23P01'; // exclusion_violation: tax_rates_no_overlap

export function listTaxRates(
  ctx: ServiceContext,
  actor: Actor,
  filter: taxRates.TaxRateFilter,
): Promise<Page<TaxRateRow>> {
  return inTenant(ctx, actor, async (tx) => toPage(await taxRates.listTaxRates(tx.db, filter), filter.limit));
}

export function getTaxRate(ctx: ServiceContext, actor: Actor, id: string): Promise<TaxRateRow | undefined> {
  return inTenant(ctx, actor, (tx) => taxRates.findTaxRate(tx.db, id));
}

export type CreateTaxRateOutcome = { kind: 'created'; rate: TaxRateRow } | { kind: 'overlap' };

export async function createTaxRate(
  ctx: ServiceContext,
  actor: Actor,
  input: taxRates.NewTaxRate,
): Promise<CreateTaxRateOutcome> {
  try {
    return await inTenant(ctx, actor, async (tx): Promise<CreateTaxRateOutcome> => {
      const rate = await taxRates.insertTaxRate(tx.db, input);
      tx.emit({
        type: 'tax_rate.created',
        resource_type: 'tax_rate',
        resource_id: rate.id,
        data: toTaxRateResponse(rate),
      });
      return { kind: 'created', rate };
    });
  } catch (error) {
    if (sqlState(error) === OVERLAP) return { kind: 'overlap' };
    throw error;
  }
}

export interface SupersedeInput {
  percentage: string;
  name?: string | undefined;
  effective_from: string;
}

export type SupersedeOutcome =
  | { kind: 'superseded'; closed: TaxRateRow; rate: TaxRateRow }
  | { kind: 'missing' }
  | { kind: 'closed-already'; current: TaxRateRow; successor: TaxRateRow }
  | { kind: 'not-after-start'; current: TaxRateRow }
  | { kind: 'not-before-end'; current: TaxRateRow & { effective_until: string } }
  | { kind: 'overlap' };

/**
 * Closes the rate on `effective_from` and opens its successor from that day, to the rate's own
 * end if it has one (a temporary rate changed before it ends, tax1 F1; a rate superseded or
 * followed by another already, changed again within its dates, retest16 #1).
 */
export async function supersedeTaxRate(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  input: SupersedeInput,
): Promise<SupersedeOutcome> {
  try {
    return await inTenant(ctx, actor, async (tx): Promise<SupersedeOutcome> => {
      const current = await taxRates.lockTaxRate(tx.db, id);
      if (!current) return { kind: 'missing' };
      const until = current.effective_until;
      if (input.effective_from <= current.effective_from) return { kind: 'not-after-start', current };
      // On or after its end: the change is the rate's that follows it, when one does.
      if (until !== null && input.effective_from >= until) {
        const successor = await taxRates.findSuccessor(tx.db, current);
        if (successor) return { kind: 'closed-already', current, successor };
        return { kind: 'not-before-end', current: { ...current, effective_until: until } };
      }
      const closed = await taxRates.closeTaxRate(tx.db, id, input.effective_from);
      const rate = await taxRates.insertTaxRate(tx.db, {
        code: current.code,
        region: current.region,
        name: input.name ?? current.name,
        percentage: input.percentage,
        effective_from: input.effective_from,
        effective_until: until,
      });
      tx.emit({
        type: 'tax_rate.superseded',
        resource_type: 'tax_rate',
        resource_id: id,
        data: toTaxRateResponse(closed),
        previous: { effective_until: until },
      });
      tx.emit({
        type: 'tax_rate.created',
        resource_type: 'tax_rate',
        resource_id: rate.id,
        data: toTaxRateResponse(rate),
      });
      return { kind: 'superseded', closed, rate };
    });
  } catch (error) {
    if (sqlState(error) === OVERLAP) return { kind: 'overlap' };
    throw error;
  }
}
