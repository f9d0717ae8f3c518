// uuidV7 (src/database/uuid-v7.ts): the layout of uuid_generate_v7() in the database, RFC 9562.
import { describe, expect, it } from 'vitest';
import { uuidV7 } from '../../src/database/uuid-v7.js';

describe('uuidV7', () => {
  it('carries the time in its first 48 bits, then version 7 and variant 10', () => {
    const at = Date.UTC(2026, 11, 4, 10, 0, 0, 123);
    const id = uuidV7(at);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(at);
  });

  it('orders by time and differs within one millisecond', () => {
    const earlier = uuidV7(1_000);
    const later = uuidV7(1_001);
    expect(earlier < later).toBe(true);
    const same = new Set(Array.from({ length: 1000 }, () => uuidV7(5_000)));
    expect(same.size).toBe(1000);
  });
});
