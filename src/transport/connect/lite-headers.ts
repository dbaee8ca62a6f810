/**
 * A Headers for a call's response headers and trailers on the fast path. undici's Headers
 * validates and normalises through WebIDL on every call and cost a cached VerifyToken 3 % of
 * its time to set one x-request-id (issue 16). This keeps what a response header list needs:
 * names lower-cased, values of a repeated name joined with ", " as Headers does, iteration in
 * name order. Values are not validated here: HTTP/2's own respond() refuses an invalid one.
 */
export class LiteHeaders implements Headers {
  private readonly map = new Map<string, string>();

  append(name: string, value: string): void {
    const key = name.toLowerCase();
    const existing = this.map.get(key);
    this.map.set(key, existing === undefined ? value : `${existing}, ${value}`);
  }

  delete(name: string): void {
    this.map.delete(name.toLowerCase());
  }

  get(name: string): string | null {
    return this.map.get(name.toLowerCase()) ?? null;
  }

  getSetCookie(): string[] {
    const cookie = this.map.get('set-cookie');
    return cookie === undefined ? [] : [cookie];
  }

  has(name: string): boolean {
    return this.map.has(name.toLowerCase());
  }

  set(name: string, value: string): void {
    this.map.set(name.toLowerCase(), value);
  }

  forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void {
    for (const [key, value] of this.sorted()) callback.call(thisArg, value, key, this);
  }

  *entries(): IterableIterator<[string, string]> {
    yield* this.sorted();
  }

  *keys(): IterableIterator<string> {
    for (const [key] of this.entries()) yield key;
  }

  *values(): IterableIterator<string> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  private sorted(): [string, string][] {
    const entries = [...this.map];
    return entries.length < 2 ? entries : entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
}
