// Exact decimal money: amounts travel as strings ("49.99") and are computed as BigInt counts of
// 1/10,000 (unit prices may have four decimals: 0.0025 per API call). Never a float.

/** Ten-thousandths of the currency unit. */
export type Micros = bigint;

const SCALE = 10_000n;
const DECIMAL = /^(\d+)(?:\.(\d{1,4}))?$/;

/** "12.3456" → 123456n. Throws on anything that is not a non-negative decimal with ≤ 4 places. */
export function parseAmount(text: string): Micros {
  const match = DECIMAL.exec(text);
  if (!match) throw new RangeError(`not an amount: ${text}`);
  return BigInt(match[1]!) * SCALE + BigInt((match[2] ?? '').padEnd(4, '0'));
}

/** Rounds to the cent, half up (half away from zero; amounts are never negative here). */
export function roundToCents(value: Micros): Micros {
  return ((value + 50n) / 100n) * 100n;
}

/**
 * 123456n → "12.35" after rounding to the cent: how every amount the API shows is written. A
 * negative amount is written as formatSignedCents writes it (-123456n → "-12.35"), never with a
 * minus inside ("0.-49").
 */
export function formatCents(value: Micros): string {
  if (value < 0n) return `-${formatCents(-value)}`;
  const cents = roundToCents(value) / 100n;
  return `${cents / 100n}.${String(cents % 100n).padStart(2, '0')}`;
}

/** Whether two amounts are the same number: "10", "10.0" and "10.00" are one price. */
export function sameAmount(a: string, b: string): boolean {
  return parseSignedAmount(a) === parseSignedAmount(b);
}

/** parseAmount with an optional leading minus: "-12.35" → -123500n (credits). */
export function parseSignedAmount(text: string): Micros {
  return text.startsWith('-') ? -parseAmount(text.slice(1)) : parseAmount(text);
}

/** formatCents for an amount that may be negative: -123456n → "-12.35" (rounded half away from zero). */
export function formatSignedCents(value: Micros): string {
  return value < 0n ? `-${formatCents(-value)}` : formatCents(value);
}

/** 123456n → "12.3456", exactly (for unit prices). */
export function formatMicros(value: Micros): string {
  const digits = String(value % SCALE).padStart(4, '0');
  return `${value / SCALE}.${digits}`;
}

/**
 * amount × percentage / 100, rounded once, half up, to the cent (the percentage has up to four
 * decimals: "8.8750"). Rounding once matters: 0.99 × 0.5% = 0.00495 is 0.00, not 0.01.
 */
export function percentOf(amount: Micros, percentage: string): Micros {
  const rate = parseAmount(percentage); // percent × 10,000
  // amount [1e-4] × rate [1e-4 %] = tax in 1e-10 of the unit = cents × 1e8.
  return ((amount * rate + 50_000_000n) / 100_000_000n) * 100n;
}

/** A price as shown: at least two decimals, up to four when they matter ("49.99", "0.0025"). */
export function formatPrice(value: Micros): string {
  const exact = formatMicros(value);
  return exact.endsWith('00') ? exact.slice(0, -2) : exact;
}
