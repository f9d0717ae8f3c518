// Where a credit note's money goes (billing/credit-notes.ts, creditNoteMoney): what is due first,
// the rest refunded (never more than is refundable) or credited to the balance, nothing lost.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { creditNoteAmounts, creditNoteMoney } from '../../src/billing/credit-notes.js';
import { parseAmount } from '../../src/billing/money.js';

const cents = (n: number) => (n / 100).toFixed(2);

describe('creditNoteMoney', () => {
  test.prop([
    fc.integer({ min: 1, max: 100_000 }),
    fc.integer({ min: 0, max: 100_000 }),
    fc.integer({ min: 0, max: 100_000 }),
    fc.boolean(),
    fc.constantFrom('payment' as const, 'balance' as const, undefined),
  ])(
    'splits the total exactly, and never refunds more than is refundable',
    (total, due, refundable, paid, to) => {
      const out = creditNoteMoney(
        cents(total),
        { paid, amountDue: paid ? '0.00' : cents(due), refundable: paid ? cents(refundable) : '0.00' },
        to,
        '/amount',
      );
      if ('errors' in out) {
        expect(out.errors).toHaveLength(1);
        return;
      }
      const parts = [out.off_due, out.refund_amount, out.credit_amount].map(parseAmount);
      expect(parts.reduce((a, b) => a + b, 0n)).toBe(parseAmount(cents(total)));
      expect(parts[1]! <= parseAmount(paid ? cents(refundable) : '0.00')).toBe(true);
      if (paid) expect(out.off_due).toBe('0.00');
      expect(out.refund_to === null).toBe(parts[1]! + parts[2]! === 0n);
    },
  );

  it('refuses a paid invoice without refund_to, and a refund of an unpaid one', () => {
    expect(
      creditNoteMoney('1.00', { paid: true, amountDue: '0.00', refundable: '5.00' }, undefined, '/amount'),
    ).toEqual({
      errors: [
        {
          field: '/refund_to',
          message: 'required for a paid invoice: payment (a refund) or balance (the customer balance)',
        },
      ],
    });
    expect(
      creditNoteMoney('1.00', { paid: false, amountDue: '5.00', refundable: '0.00' }, 'payment', '/amount'),
    ).toMatchObject({ errors: [{ field: '/refund_to' }] });
    // An unpaid invoice that the balance paid in part: what goes beyond what is due goes back to it.
    expect(
      creditNoteMoney('8.00', { paid: false, amountDue: '5.00', refundable: '0.00' }, undefined, '/lines'),
    ).toEqual({
      off_due: '5.00',
      refund_to: 'balance',
      refund_amount: '0.00',
      credit_amount: '3.00',
    });
  });
});

describe('creditNoteAmounts of lines', () => {
  const invoice = {
    subtotal: '25.00',
    taxes: [],
    lines: [
      { description: 'Basic', amount: '30.00' },
      { description: 'Free month', amount: '0.00' },
      { description: '5.00 off', amount: '-5.00' },
    ],
  };
  it('refuses a line that is not a charge, saying what it is', () => {
    const credit = (line_index: number) =>
      creditNoteAmounts(invoice, [], { reason: 'r', lines: [{ line_index, amount: '1.00' }] });
    expect(credit(2)).toEqual({
      errors: [
        {
          field: '/lines/0/line_index',
          message:
            'is a credit or a discount (-5.00), not a charge: only a line with a positive amount can be credited',
        },
      ],
    });
    expect(credit(1)).toEqual({
      errors: [
        {
          field: '/lines/0/line_index',
          message: 'charges nothing (0.00): only a line with a positive amount can be credited',
        },
      ],
    });
    expect(credit(0)).not.toHaveProperty('errors');
  });
});

describe('creditNoteAmounts of an invoice whose days went back in part elsewhere (credit1 F2)', () => {
  // January, 31.00 + 5.89 VAT, paid; 21.00 of its days (3.99 of its tax) went back elsewhere.
  const vat = {
    tax_rate_id: 'vat',
    code: 'VAT',
    name: 'VAT',
    percentage: '19',
    region: 'DE',
    taxable_amount: '31.00',
    amount: '5.89',
  };
  const invoice = { subtotal: '31.00', taxes: [vat], lines: [{ description: 'January', amount: '31.00' }] };
  const elsewhere = { line_index: 0, amount: '21.00' };
  type Note = Parameters<typeof creditNoteAmounts>[1][number];
  /** Notes of `amount` until the invoice refuses one: what they reversed, before and of tax. */
  const creditAll = (amount: string) => {
    const notes: Note[] = [];
    const total = (pick: (n: Note) => string) =>
      cents(notes.reduce((sum, n) => sum + Number(pick(n).replace('.', '')), 0));
    for (let next = amount; ;) {
      const note = creditNoteAmounts(invoice, notes, { reason: 'r', amount: next }, elsewhere);
      if ('errors' in note) {
        // Refused: the rest of what is left (10.00), if any, in a last note.
        const rest = cents(1000 - Number(total((n) => n.subtotal).replace('.', '')));
        if (next === rest || rest === '0.00') break;
        next = rest;
        continue;
      }
      notes.push(note);
    }
    return { subtotal: total((n) => n.subtotal), tax: total((n) => n.taxes[0]!.amount) };
  };

  it('reverses the tax of the days left and no more, however small the notes', () => {
    // 10.00 of days left: 5.89 - 3.99 = 1.90 of tax, once the note reaching the limit is in.
    for (const amount of ['0.02', '0.03', '0.05', '3.33', '10.00'])
      expect({ amount, ...creditAll(amount) }).toEqual({ amount, subtotal: '10.00', tax: '1.90' });
  });
});

describe('creditNoteAmounts by lines', () => {
  it("names the invoice's limit when it is lower than the line's, so that one retry fits (retest24 #3)", () => {
    // A 31.00 price less a 10.00 credit of another period (21.00); 11.04 of its days went back.
    const invoice = {
      subtotal: '21.00',
      taxes: [],
      lines: [
        { description: 'Price', amount: '31.00' },
        { description: 'Unused time', amount: '-10.00' },
      ],
    };
    const elsewhere = { line_index: 0, amount: '11.04' };
    const refused = creditNoteAmounts(
      invoice,
      [],
      { reason: 'r', lines: [{ line_index: 0, amount: '21.00' }] },
      elsewhere,
    );
    // The line has 19.96 left, the invoice 9.96.
    expect(refused).toEqual({
      errors: [
        {
          field: '/lines/0/amount',
          message: expect.stringContaining('of the invoice (9.96 before tax') as string,
        },
      ],
    });
    const fits = creditNoteAmounts(
      invoice,
      [],
      { reason: 'r', lines: [{ line_index: 0, amount: '9.96' }] },
      elsewhere,
    );
    expect(fits).toMatchObject({ subtotal: '9.96' });
  });
});
