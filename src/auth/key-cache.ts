// Recently authenticated keys, so the check that runs before a request's body is read costs no
// database round trip. It only decides whether the body is read: every transaction checks the key
// again in the database (withTenant), so a revoked key can do nothing anywhere, cached or not.
// Entries live at most ttlMs; the process that revokes a key forgets it at once. Keys are held as
// presented, in this process' memory only, as they pass through it on every request anyway.

export class KeyCache<Holder extends { keyId: string }> {
  readonly #entries = new Map<string, { holder: Holder; expires: number }>();

  constructor(
    private readonly ttlMs = 30_000,
    private readonly maxEntries = 10_000,
  ) {}

  /** The holder of this key (as presented), if it was authenticated less than ttlMs ago. */
  get(key: string, now = Date.now()): Holder | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expires > now) return entry.holder;
    this.#entries.delete(key);
    return undefined;
  }

  /** Cached for ttlMs, or until `validUntil` (epoch ms: the key's expiry) if sooner. */
  set(key: string, holder: Holder, validUntil = Infinity, now = Date.now()): void {
    this.#entries.delete(key);
    if (validUntil <= now) return;
    // Maps keep insertion order: the first entry is the oldest.
    if (this.#entries.size >= this.maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, { holder, expires: Math.min(now + this.ttlMs, validUntil) });
  }

  forgetKey(keyId: string): void {
    for (const [key, entry] of this.#entries) if (entry.holder.keyId === keyId) this.#entries.delete(key);
  }
}
