import { formatMicros, parseAmount } from '../billing/money.js';
import type { Schemas } from '../contract.js';
import type { TaxRateRow } from '../database/schema.js';

export function toTaxRateResponse(row: TaxRateRow): Schemas['TaxRate'] {
  return {
    id: row.id,
    code: row.code,
    name: row.name,
    percentage: formatMicros(parseAmount(row.percentage)),
    region: row.region,
    effective_from: row.effective_from,
    effective_until: row.effective_until,
    created_at: row.created_at.toISOString(),
  };
}
