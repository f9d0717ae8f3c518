// UUIDv7 (RFC 9562) made here, as uuid_generate_v7() makes them in the database (migration
// 202611230001): 48 bits of Unix milliseconds, the version and variant, then random bits. For a
// row whose id a statement sent in the same round trip must name (a hold and its ledger entry).
import { randomBytes } from 'node:crypto';

export function uuidV7(now = Date.now()): string {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = (bytes[6]! & 0x0f) | 0x70; // version 7
  bytes[8] = (bytes[8]! & 0x3f) | 0x80; // variant 10
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
