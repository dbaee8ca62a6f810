import { describe, expect, it } from 'vitest';
import { Email, emailKey } from '../../src/domain/identity/value-objects/email.value-object.js';

/**
 * Registration stores `Email.parse(raw).key`; login looks up `emailKey(raw)`. Both must be the
 * one function (NFC, lower-case, NFC), or an address registers and then cannot log in, or two
 * spellings of one address register as two users.
 */

const stored = (raw: string): Email => {
  const parsed = Email.parse(raw);
  if (!parsed.ok) throw new Error(`expected ${JSON.stringify(raw)} to be accepted: ${parsed.error}`);
  return parsed.value;
};

/** The keys before this fix: lower-case after NFC, with nothing after. */
const previousKey = (raw: string): string => raw.trim().normalize('NFC').toLowerCase();

describe('the reproductions', () => {
  it('zed@xT\\u0308.com: the key login computes is the key registration stored', () => {
    const raw = 'zed@xT\u0308.com';
    expect(emailKey(raw)).toBe(stored(raw).key);
    expect(emailKey(raw)).toBe('zed@x\u1E97.com');
    // What went wrong: the stored key was NFC of the lower-cased domain, login's was not.
    expect(previousKey(raw)).not.toBe(previousKey(stored(raw).value));
  });

  it('aT\\u0308@example.org and a\\u1E97@example.org are one user', () => {
    const decomposed = stored('aT\u0308@example.org');
    const precomposed = stored('a\u1E97@example.org');
    expect(decomposed.key).toBe(precomposed.key);
    expect(emailKey('aT\u0308@example.org')).toBe(emailKey('a\u1E97@example.org'));
    expect(previousKey(decomposed.value)).not.toBe(previousKey(precomposed.value));
  });

  it.each([
    ['A\u030A@example.org', '\u00E5@example.org'], // Å decomposed and å
    ['\u212B@example.org', '\u00E5@example.org'], // ANGSTROM SIGN: NFC makes it Å
    ['Ann@X.IO', 'ann@x.io'],
    ['J\u030C@example.org', '\u01F0@example.org'], // J̌ has no precomposed form, ǰ has
    ['\u1E9E@example.org', '\u00DF@example.org'], // capital sharp s lower-cases to ß
    ['zed@XT\u0308.COM', 'zed@x\u1E97.com'],
  ])('%j and %j share a key', (a, b) => {
    expect(stored(a).key).toBe(stored(b).key);
    expect(emailKey(a)).toBe(emailKey(b));
  });

  it('keys are NFC and stable: the key of a key is itself', () => {
    for (const raw of ['zed@xT\u0308.com', 'aT\u0308@example.org', 'A\u030A\u0301@X.org', '\u0130i@example.org']) {
      const key = emailKey(raw);
      expect(key).toBe(key.normalize('NFC'));
      expect(emailKey(key)).toBe(key);
    }
  });
});

describe('the stored address', () => {
  it('is NFC after its domain is lower-cased', () => {
    expect(stored('zed@xT\u0308.com').value).toBe('zed@x\u1E97.com');
    expect(stored('T\u0308ed@Example.org').value).toBe('T\u0308ed@example.org'); // the local part keeps its case (and NFC)
  });
});

describe('every code point: registration and login derive the same key from the same string', () => {
  // The whole Basic Multilingual Plane, alone and before U+0308 (which composes with many letters
  // only in one case), in the local part and in the domain. The full sweep over all planes and
  // more combining marks (17.8 million addresses) found no difference either; it takes minutes.
  const mismatches = (key: (raw: string) => string): string[] => {
    const found: string[] = [];
    for (let cp = 0x20; cp <= 0xffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const c = String.fromCodePoint(cp);
      for (const raw of [`a${c}@x${c}.com`, `zed@x${c}\u0308.com`, `${c}\u0308@example.org`]) {
        const parsed = Email.parse(raw);
        if (parsed.ok && key(parsed.value.value) !== key(raw)) found.push(raw);
      }
    }
    return found;
  };

  it('no string keys differently at registration and at login', () => {
    expect(mismatches(emailKey)).toEqual([]);
  });

  it('(the sweep would have caught the previous key function)', () => {
    expect(mismatches(previousKey).length).toBeGreaterThan(0);
  });
});
