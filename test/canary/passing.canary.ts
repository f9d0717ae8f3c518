// Passes, so that the canary run also shows the runner exits 0 when nothing fails.
import { expect, test } from 'vitest';

test('the canary passes', () => {
  expect(1 + 1).toBe(2);
});
