/**
 * Answers built once and given out again: the response to a cached token is the same for every
 * call that presents it (issue 16: building and encoding it was a tenth of a cached call). Only
 * a frozen key (the token cache hands out frozen VerifiedTokens) gets a kept answer, and that
 * answer is frozen all the way down before anyone sees it, so nobody can change what the next
 * caller receives; the fast path keeps the encoding of a frozen message beside it (see
 * encodedOnce), which is why frozen is the rule and not a convention. Other keys get a fresh
 * answer each time.
 */
export function frozenAnswers<K extends object, V extends object>(build: (key: K) => V): (key: K) => V {
  return keptBesideFrozen(build, (key) => deepFreeze(build(key)));
}

/**
 * `encode(message)`, kept beside a frozen message for as long as the message lives; a message
 * that is not frozen may still change and is encoded every time. Kept bytes get memory of
 * their own: a slice of Node's buffer pool (verify-token-response.encoder) would keep its whole
 * 8 KB slab alive for as long as the answer is kept.
 */
export function encodedOnce<T extends Uint8Array | string>(encode: (message: object) => T): (message: object) => T {
  return keptBesideFrozen(encode, (message) => {
    const encoded = encode(message);
    return (typeof encoded === 'string' ? encoded : new Uint8Array(encoded)) as T;
  });
}

/** `compute(key)` for a key that may change; for a frozen one, `keep(key)` once, for as long as the key lives. */
function keptBesideFrozen<K extends object, V>(compute: (key: K) => V, keep: (key: K) => V): (key: K) => V {
  const kept = new WeakMap<K, V>();
  return (key) => {
    if (!Object.isFrozen(key)) return compute(key);
    let value = kept.get(key);
    if (value === undefined) kept.set(key, (value = keep(key)));
    return value;
  };
}

/** The value frozen all the way down: a constant answer, whose encoding the fast path then keeps. */
export function deepFreeze<T>(value: T): T {
  // Typed arrays cannot be frozen (their elements stay writable); messages hold only empty ones here.
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value) || Object.isFrozen(value)) return value;
  for (const nested of Object.values(value)) deepFreeze(nested);
  return Object.freeze(value);
}
