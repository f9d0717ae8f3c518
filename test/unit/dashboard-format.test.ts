// The dashboard's number formatting: thousands separators and a currency, exactly from the
// decimal strings the API sends (no float rounding, however large the amount).
import { describe, expect, it } from 'vitest';
import {
  firstDayAfter,
  formatCount,
  formatMoney,
  monthsBefore,
  pageCurrency,
  trimAmount,
} from '../../src/dashboard/format.js';

describe('formatMoney', () => {
  it.each([
    ['22762888.80', undefined, '22,762,888.80'],
    ['22762888.8', undefined, '22,762,888.80'],
    ['0.00', undefined, '0.00'],
    ['999.99', undefined, '999.99'],
    ['1000', undefined, '1,000.00'],
    ['-1200.5', undefined, '-1,200.50'],
    ['12345678901234567890.12', undefined, '12,345,678,901,234,567,890.12'],
    ['0.1234', undefined, '0.1234'],
    ['22762888.80', 'EUR', '€22,762,888.80'],
    ['-5.00', 'USD', '-$5.00'],
    ['1234.5', 'CHF', 'CHF\u00a01,234.50'], // Intl puts a no-break space there
  ])('%s in %s is %s', (amount, currency, shown) => {
    expect(formatMoney(amount, currency)).toBe(shown);
  });
});

describe('formatCount and pageCurrency', () => {
  it('groups counts, and takes only a currency Intl knows from the page URL', () => {
    expect(formatCount(1234567)).toBe('1,234,567');
    expect(formatCount(12)).toBe('12');
    expect(pageCurrency('?currency=eur')).toBe('EUR');
    expect(pageCurrency('?currency=E1R')).toBeUndefined();
    expect(pageCurrency('')).toBeUndefined();
  });
});

describe('trimAmount', () => {
  it.each([
    ['10.2000', '10.20'],
    ['0.0371', '0.0371'],
    ['-0.5000', '-0.50'],
    ['12.3450', '12.345'],
    ['0.0000', '0.00'],
    ['-5', '-5.00'],
  ])('%s shows as %s: no zero past the cents, no digit lost', (amount, shown) => {
    expect(trimAmount(amount)).toBe(shown);
  });
});

describe('monthsBefore and firstDayAfter', () => {
  it('count months in every year the API takes, the first hundred too (metrics2 #1)', () => {
    expect(monthsBefore('2026-12', 11)).toBe('2026-01');
    expect(monthsBefore('2026-03', 11)).toBe('2025-04');
    expect(monthsBefore('0050-12', 11)).toBe('0050-01');
    expect(monthsBefore('0002-03', 11)).toBe('0001-04');
    expect(firstDayAfter('2026-12')).toBe('2027-01-01');
    expect(firstDayAfter('2026-02')).toBe('2026-03-01');
    expect(firstDayAfter('0050-12')).toBe('0051-01-01');
    expect(firstDayAfter('0099-12')).toBe('0100-01-01');
    expect(firstDayAfter('9999-11')).toBe('9999-12-01');
  });
});
