// Recently authenticated keys, so the check that runs before a request's body is read costs no
// database round trip. It only decides whether the body is read: every transaction checks the key
// again in the database (withTenant), so a revoked key can do nothing anywhere, cached or not.
// Entries live at most ttlMs; the process that revokes a key forgets it at once.

export class KeyCache<Holder extends { keyId: string }> {
  readonly #entries = new Map<string, { holder: Holder; expires: number }>();

  constructor(
    private readonly ttlMs = 30_000,
    private readonly maxEntries = 10_000,
  ) {}

  /** The holder of the key with this hash, if it was authenticated less than ttlMs ago. */
  get(hash: string, now = Date.now()): Holder | undefined {
    const entry = this.#entries.get(hash);
    if (!entry) return undefined;
    if (entry.expires > now) return entry.holder;
    this.#entries.delete(hash);
    return undefined;
  }

  set(hash: string, holder: Holder, now = Date.now()): void {
    this.#entries.delete(hash);
    // Maps keep insertion order: the first entry is the oldest.
    if (this.#entries.size >= this.maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(hash, { holder, expires: now + this.ttlMs });
  }

  forgetKey(keyId: string): void {
    for (const [hash, entry] of this.#entries) if (entry.holder.keyId === keyId) this.#entries.delete(hash);
  }

  forgetHash(hash: string): void {
    this.#entries.delete(hash);
  }
}
