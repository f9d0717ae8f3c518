import type { Db } from '../database/connection.js';
import type { TaxRateRow } from '../database/schema.js';

const columns = [
  'id',
  'code',
  'name',
  'percentage',
  'region',
  'effective_from',
  'effective_until',
  'created_at',
] as const;

export interface TaxRateFilter {
  limit: number;
  after?: string | undefined;
  code?: string | undefined;
  region?: string | undefined;
  /** Only the rates in force on this date. */
  on?: string | undefined;
}

export function listTaxRates(db: Db, filter: TaxRateFilter): Promise<TaxRateRow[]> {
  let query = db
    .selectFrom('tax_rates')
    .select(columns)
    .orderBy('id', 'desc')
    .limit(filter.limit + 1);
  if (filter.after) query = query.where('id', '<', filter.after);
  if (filter.code !== undefined) query = query.where('code', '=', filter.code);
  if (filter.region !== undefined) query = query.where('region', '=', filter.region);
  if (filter.on !== undefined) {
    const on = filter.on;
    query = query
      .where('effective_from', '<=', on)
      .where((eb) => eb.or([eb('effective_until', 'is', null), eb('effective_until', '>', on)]));
  }
  return query.execute();
}

export function findTaxRate(db: Db, id: string): Promise<TaxRateRow | undefined> {
  return db.selectFrom('tax_rates').select(columns).where('id', '=', id).executeTakeFirst();
}

export function lockTaxRate(db: Db, id: string): Promise<TaxRateRow | undefined> {
  return db.selectFrom('tax_rates').select(columns).where('id', '=', id).forUpdate().executeTakeFirst();
}

/** The rate that superseded `rate`: the same code and region, from the day it was closed on. */
export function findSuccessor(
  db: Db,
  rate: Pick<TaxRateRow, 'code' | 'region' | 'effective_until'>,
): Promise<TaxRateRow | undefined> {
  if (rate.effective_until === null) return Promise.resolve(undefined);
  return db
    .selectFrom('tax_rates')
    .select(columns)
    .where('code', '=', rate.code)
    .where('region', '=', rate.region)
    .where('effective_from', '=', rate.effective_until)
    .executeTakeFirst();
}

export interface NewTaxRate {
  code: string;
  name: string;
  percentage: string;
  region: string;
  effective_from: string;
  effective_until?: string | null | undefined;
}

/** An overlap with a rate of the same code and region raises 23P01 (tax_rates_no_overlap). */
export function insertTaxRate(db: Db, values: NewTaxRate): Promise<TaxRateRow> {
  return db.insertInto('tax_rates').values(values).returning(columns).executeTakeFirstOrThrow();
}

/** Closes a rate on this date, earlier than any end it had (the only change a rate allows). */
export function closeTaxRate(db: Db, id: string, until: string): Promise<TaxRateRow> {
  return db
    .updateTable('tax_rates')
    .set({ effective_until: until })
    .where('id', '=', id)
    .returning(columns)
    .executeTakeFirstOrThrow();
}

/**
 * The rates that apply in a region on a date: those of the region itself and of its country
 * (a user in US-CA pays the US rates and the US-CA ones).
 */
export function ratesInForce(db: Db, region: string, on: string): Promise<TaxRateRow[]> {
  const regions = region.includes('-') ? [region, region.split('-')[0]!] : [region];
  return db
    .selectFrom('tax_rates')
    .select(columns)
    .where('region', 'in', regions)
    .where('effective_from', '<=', on)
    .where((eb) => eb.or([eb('effective_until', 'is', null), eb('effective_until', '>', on)]))
    .orderBy('region')
    .orderBy('code')
    .execute();
}
