// Metadata: a tenant's own key-value pairs on users and subscriptions (the contract's Metadata
// and MetadataUpdate). Stored as a jsonb object, null when empty; never read by billing.

export type Metadata = Record<string, string>;
export type MetadataUpdate = Record<string, string | null>;

/** The most keys an object holds (as Stripe allows). */
export const MOST_KEYS = 50;

/** What reads answer: {} for none. */
export const metadataOf = (stored: unknown): Metadata => (stored ?? {}) as Metadata;

/**
 * `current` with `update` merged in (a null value removes its key), or 'too-many' past MOST_KEYS.
 * When nothing changes, `current` itself comes back, so a comparison by value sees no change.
 */
export function mergeMetadata(current: unknown, update: MetadataUpdate): Metadata | 'too-many' {
  const before = metadataOf(current);
  const merged: Metadata = { ...before };
  for (const [key, value] of Object.entries(update)) {
    if (value === null) delete merged[key];
    // Defined, not assigned: `merged['__proto__'] = value` would call the prototype setter and
    // store nothing, where POST stores the key as any other (JSON.parse makes it an own key).
    else Object.defineProperty(merged, key, { value, enumerable: true, writable: true, configurable: true });
  }
  if (Object.keys(merged).length > MOST_KEYS) return 'too-many';
  const same =
    Object.keys(merged).length === Object.keys(before).length &&
    Object.entries(merged).every(([key, value]) => Object.hasOwn(before, key) && before[key] === value);
  return same ? before : merged;
}

/** What the column stores: null for none. */
export const storedMetadata = (metadata: Metadata): Metadata | null =>
  Object.keys(metadata).length === 0 ? null : metadata;
