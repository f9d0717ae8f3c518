// Numbers for people: money and counts with thousands separators (and a currency symbol when the
// page is opened with ?currency=EUR, say: the API itself has one currency per deployment and does
// not name it). Money is formatted from its decimal string, exactly: no float ever rounds it. The
// exact value stays in the element's title and data-value.

/** "22762888.8" → "22,762,888.80"; with currency "EUR", "€22,762,888.80"; negative: "-€1,200.00". */
export function formatMoney(amount, currency) {
  const negative = amount.startsWith('-');
  const [whole, fraction = ''] = (negative ? amount.slice(1) : amount).split('.');
  const grouped = whole.replace(/^0+(?=\d)/, '').replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const cents = fraction.length >= 2 ? fraction : fraction.padEnd(2, '0');
  const { prefix, suffix } = currencyAffixes(currency);
  return `${negative ? '-' : ''}${prefix}${grouped}.${cents}${suffix}`;
}

/** An exact amount with no zeros past the cents: "10.2000" → "10.20", "0.0371" stays, "-5" → "-5.00". */
export function trimAmount(amount) {
  const [whole, fraction = ''] = amount.split('.');
  let digits = fraction.padEnd(2, '0');
  while (digits.length > 2 && digits.endsWith('0')) digits = digits.slice(0, -1);
  return `${whole}.${digits}`;
}

/** 1234567 → "1,234,567". */
export function formatCount(count) {
  return Number(count).toLocaleString('en-US');
}

/** The symbol around an amount in this currency, e.g. { prefix: '€', suffix: '' }; none for none. */
function currencyAffixes(currency) {
  if (!currency) return { prefix: '', suffix: '' };
  const parts = new Intl.NumberFormat('en-US', { style: 'currency', currency }).formatToParts(1);
  const at = parts.findIndex((p) => p.type === 'integer');
  const last = parts.findLastIndex(
    (p) => p.type === 'integer' || p.type === 'fraction' || p.type === 'decimal',
  );
  return {
    prefix: parts
      .slice(0, at)
      .map((p) => p.value)
      .join(''),
    suffix: parts
      .slice(last + 1)
      .map((p) => p.value)
      .join(''),
  };
}

/** The page's ?currency=, if it names a currency Intl knows (ISO 4217); undefined otherwise. */
export function pageCurrency(search) {
  const code = new URLSearchParams(search).get('currency')?.toUpperCase();
  if (!code || !/^[A-Z]{3}$/.test(code)) return undefined;
  try {
    new Intl.NumberFormat('en-US', { style: 'currency', currency: code });
    return code;
  } catch {
    return undefined;
  }
}

/**
 * The first day of a month, at midnight UTC, for any year the API takes (0001 to 9999):
 * Date.UTC reads the years 0 to 99 as 1900 to 1999, setUTCFullYear does not.
 */
function firstOfMonth(year, monthIndex) {
  const day = new Date(0);
  day.setUTCFullYear(year, monthIndex, 1);
  return day;
}

/** "2026-12", 11 → "2026-01"; "0050-12", 11 → "0050-01". */
export function monthsBefore(month, n) {
  const [year, m] = month.split('-').map(Number);
  return firstOfMonth(year, m - 1 - n)
    .toISOString()
    .slice(0, 7);
}

/** The first day of the month after this one: "2026-12" → "2027-01-01"; "0050-12" → "0051-01-01". */
export function firstDayAfter(month) {
  const [year, m] = month.split('-').map(Number);
  return firstOfMonth(year, m).toISOString().slice(0, 10);
}
