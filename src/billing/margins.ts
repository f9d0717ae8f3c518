// Margins from exact sums: revenue − cost, and its percentage of revenue. Sums arrive as decimal
// text (PostgreSQL numeric) with at most four decimals and are computed as BigInt ten-thousandths,
// never floats.

/** Sums of one group, as numeric text ("12.34", "0", "1.2300"). */
export interface MarginSums {
  revenue: string;
  cost: string;
  unbilled_cost: string;
}

export interface MarginFigures {
  /** Four decimals: "12.3400". */
  revenue: string;
  cost: string;
  /** revenue − cost; negative for a loss: "-0.5000". */
  margin: string;
  /** 100 × margin / revenue, rounded half away from zero to two decimals; null when revenue is 0. */
  margin_percent: string | null;
  unbilled_cost: string;
}

const SCALE = 10_000n;

/** "12.34" → 123400n (ten-thousandths), signed. Throws on anything with more than four decimals. */
export function parseSum(text: string): bigint {
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  const fraction = match?.[3] ?? '';
  // numeric may write zeros past its last digit ("1.230000"): only the digits that count matter.
  if (!match || fraction.replace(/0+$/, '').length > 4) throw new RangeError(`not a sum of amounts: ${text}`);
  const value = BigInt(match[2]!) * SCALE + BigInt(fraction.slice(0, 4).padEnd(4, '0'));
  return match[1] ? -value : value;
}

/** 123400n → "12.3400"; -5n → "-0.0005"; 0n → "0.0000" (never "-0.0000"). */
export function formatSum(value: bigint): string {
  const abs = value < 0n ? -value : value;
  return `${value < 0n ? '-' : ''}${abs / SCALE}.${String(abs % SCALE).padStart(4, '0')}`;
}

/** 100 × margin / revenue (revenue ≥ 0), half away from zero, two decimals; null for no revenue. */
export function marginPercent(margin: bigint, revenue: bigint): string | null {
  if (revenue <= 0n) return null;
  const abs = margin < 0n ? -margin : margin;
  // In hundredths of a percent: abs × 10,000 / revenue, rounded half up on the magnitude.
  const hundredths = (abs * 10_000n * 2n + revenue) / (2n * revenue);
  const sign = margin < 0n && hundredths > 0n ? '-' : '';
  return `${sign}${hundredths / 100n}.${String(hundredths % 100n).padStart(2, '0')}`;
}

export function marginFigures(sums: MarginSums): MarginFigures {
  const revenue = parseSum(sums.revenue);
  const cost = parseSum(sums.cost);
  return {
    revenue: formatSum(revenue),
    cost: formatSum(cost),
    margin: formatSum(revenue - cost),
    margin_percent: marginPercent(revenue - cost, revenue),
    unbilled_cost: formatSum(parseSum(sums.unbilled_cost)),
  };
}
