/**
 * Which verified tokens are worth remembering: those seen a second time (TinyLFU's
 * "doorkeeper"). A caller that checks each token once (a gateway handed fresh tokens, a flood
 * of distinct ones) would otherwise push a new entry into the cache on every call and an old
 * one out, and every entry pushed out is old-generation garbage that only a major GC frees:
 * at 500 distinct tokens a second that churn cost about a point of a core (issue 16, bench
 * `mixed`). A sidecar checking the same token on every request pays one more signature check
 * per token, on its second call.
 *
 * A first sighting leaves only a 32-bit fingerprint in a fixed table, so it allocates nothing.
 * The fingerprint is taken from the token's last characters, which are its signature's and
 * differ from one token to the next. Any mistake costs performance only: a token whose slot
 * another took waits for a later sighting, and one mistaken for another is remembered a call
 * early. The cache itself is still keyed by the whole token.
 */
export class SecondSighting {
  private readonly fingerprints: Int32Array;
  private readonly mask: number;

  /** `slots` is rounded up to a power of two. */
  constructor(slots: number) {
    const size = 2 ** Math.ceil(Math.log2(Math.max(2, slots)));
    this.fingerprints = new Int32Array(size);
    this.mask = size - 1;
  }

  /** True when `token` was seen since its slot was last taken (the slot is then freed); otherwise false, and it is noted. */
  seenBefore(token: string): boolean {
    const fingerprint = fingerprintOf(token);
    const slot = fingerprint & this.mask;
    if (this.fingerprints[slot] === fingerprint) {
      this.fingerprints[slot] = 0;
      return true;
    }
    this.fingerprints[slot] = fingerprint;
    return false;
  }
}

const TAIL_CHARS = 16;

/** FNV-1a over the length and the last characters, never 0 (an empty slot). */
function fingerprintOf(token: string): number {
  let hash = 0x811c9dc5 ^ token.length;
  for (let i = Math.max(0, token.length - TAIL_CHARS); i < token.length; i++) hash = Math.imul(hash ^ token.charCodeAt(i), 0x01000193);
  return hash === 0 ? 1 : hash;
}
