import { describe, expect, it } from 'vitest';
import { Email, emailKey } from '../../src/domain/identity/value-objects/email.value-object.js';

const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

/** Parses and returns the stored value, failing the test with the reason when refused. */
function accepted(raw: string): Email {
  const result = Email.parse(raw);
  if (!result.ok) throw new Error(`expected ${JSON.stringify(raw)} to be accepted, got "${result.error}"`);
  return result.value;
}

function refusal(raw: string): string {
  const result = Email.parse(raw);
  if (result.ok) throw new Error(`expected ${JSON.stringify(raw)} to be refused, got ${JSON.stringify(result.value.value)}`);
  return result.error;
}

describe('Email.parse accepts', () => {
  it.each([
    'ann@example.com',
    'a@b',
    'first.last+tag@sub.example.co.uk',
    'o\'brien@example.ie',
    'jörg@bücher.de',
    '用户@例子.广告',
    '😀@emoji.example',
  ])('%j', (raw) => {
    expect(accepted(raw).value).toBe(raw);
  });

  it('trims surrounding whitespace (spaces, tabs, newlines, NBSP)', () => {
    expect(accepted('  ann@example.com \t').value).toBe('ann@example.com');
    expect(accepted('\u00a0ann@example.com\u00a0').value).toBe('ann@example.com');
    expect(accepted('\nann@example.com\r\n').value).toBe('ann@example.com');
  });

  it('normalises to NFC (a decomposed é becomes the precomposed one)', () => {
    const decomposed = 'rene\u0301@caf\u0065\u0301.fr';
    const email = accepted(decomposed);
    expect(email.value).toBe('ren\u00e9@caf\u00e9.fr');
    expect(email.value).toBe(email.value.normalize('NFC'));
    expect(email.value).not.toBe(decomposed);
  });

  it('lower-cases the domain and keeps the case of the local part', () => {
    expect(accepted('Ann.Lee@Example.COM').value).toBe('Ann.Lee@example.com');
    expect(accepted('ÄNN@BÜCHER.DE').value).toBe('ÄNN@bücher.de');
  });

  it('prints as its value', () => {
    const email = accepted('Ann@X.io');
    expect(String(email)).toBe('Ann@x.io');
  });
});

describe('Email.parse refuses', () => {
  it.each([
    ['', 'is required'],
    ['   ', 'is required'],
    ['\t\n', 'is required'],
  ])('an empty address %j', (raw, reason) => {
    expect(refusal(raw)).toBe(reason);
  });

  it.each([
    ['no at sign', 'ann.example.com'],
    ['two at signs', 'ann@lee@example.com'],
    ['three at signs', 'a@b@c@d'],
    ['only an at sign', '@'],
  ])('%s', (_label, raw) => {
    expect(refusal(raw)).toMatch(/exactly one @|local part|domain/);
  });

  it('more than one @ names the rule', () => {
    expect(refusal('ann@lee@example.com')).toBe('must contain exactly one @');
    expect(refusal('annexample.com')).toBe('must contain exactly one @');
  });

  it('an empty local part or domain', () => {
    expect(refusal('@example.com')).toMatch(/local part/);
    expect(refusal('ann@')).toMatch(/domain/);
  });

  it.each([
    ['an empty label in the middle', 'ann@example..com'],
    ['a leading dot', 'ann@.example.com'],
    ['a trailing dot', 'ann@example.com.'],
    ['a lone dot', 'ann@.'],
  ])('a domain with %s', (_label, raw) => {
    expect(refusal(raw)).toMatch(/domain/);
  });

  it.each([
    ['NUL in the local part', 'an\0n@example.com'],
    ['NUL at the very start', '\0ann@example.com'],
    ['NUL at the very end', 'ann@example.com\0'],
    ['NUL in the domain', 'ann@exa\0mple.com'],
    ['BEL', 'ann\u0007@example.com'],
    ['LF in the middle', 'ann\n@example.com'],
    ['TAB in the middle', 'ann\t@example.com'],
    ['DEL', 'ann\u007f@example.com'],
    ['a C1 control (U+0085)', 'ann\u0085x@example.com'],
    ['ESC', 'ann@exam\u001bple.com'],
  ])('a control character: %s', (_label, raw) => {
    expect(refusal(raw)).toBe('must not contain control characters');
  });

  it.each([
    ['a lone high surrogate', 'ann\uD800@example.com'],
    ['a lone low surrogate', 'ann@exa\uDC00mple.com'],
    ['a reversed pair', 'ann\uDC00\uD800@example.com'],
    ['a lone surrogate at the end (the transport marks invalid UTF-8 this way)', 'ann@example.com\uD800'],
  ])('invalid UTF-8: %s', (_label, raw) => {
    expect(refusal(raw)).toBe('must be valid UTF-8');
  });
});

describe('Email byte limits', () => {
  const domain = 'example.com';

  it('local part: 64 ASCII bytes pass, 65 are refused', () => {
    expect(accepted(`${'a'.repeat(64)}@${domain}`).value).toBe(`${'a'.repeat(64)}@${domain}`);
    expect(refusal(`${'a'.repeat(65)}@${domain}`)).toMatch(/local part must be 1 to 64 bytes/);
  });

  it('local part counts UTF-8 bytes, not characters', () => {
    // é is 2 bytes: 32 of them are 64 bytes, 33 are 66 bytes in only 33 characters.
    expect(bytes('é'.repeat(32))).toBe(64);
    expect(accepted(`${'é'.repeat(32)}@${domain}`).value).toBe(`${'é'.repeat(32)}@${domain}`);
    expect(refusal(`${'é'.repeat(33)}@${domain}`)).toMatch(/local part/);
    // 😀 is 4 bytes (2 UTF-16 units): 16 fit, 17 do not.
    expect(accepted(`${'😀'.repeat(16)}@${domain}`).value).toContain('😀');
    expect(refusal(`${'😀'.repeat(17)}@${domain}`)).toMatch(/local part/);
    // 63 ASCII + one 2-byte character = 65 bytes in 64 characters.
    expect(refusal(`${'a'.repeat(63)}é@${domain}`)).toMatch(/local part/);
  });

  it('local part is measured after NFC (a decomposed é counts as its 2-byte composed form)', () => {
    // Decomposed, 32 × "e + U+0301" is 96 bytes; composed it is 64 bytes.
    const decomposed = 'e\u0301'.repeat(32);
    expect(bytes(decomposed)).toBe(96);
    expect(accepted(`${decomposed}@${domain}`).value).toBe(`${'é'.repeat(32)}@${domain}`);
  });

  it('domain labels: 63 bytes pass, 64 are refused, in any position', () => {
    const l63 = 'd'.repeat(63);
    const l64 = 'd'.repeat(64);
    expect(accepted(`ann@${l63}.com`).value).toBe(`ann@${l63}.com`);
    expect(accepted(`ann@x.${l63}`).value).toBe(`ann@x.${l63}`);
    expect(refusal(`ann@${l64}.com`)).toMatch(/domain must be dot-separated labels of 1 to 63 bytes/);
    expect(refusal(`ann@x.${l64}`)).toMatch(/domain/);
    expect(refusal(`ann@a.${l64}.b`)).toMatch(/domain/);
  });

  it('domain labels count UTF-8 bytes', () => {
    // ü is 2 bytes: 31 of them + 1 ASCII = 63 bytes; 32 of them = 64 bytes.
    expect(accepted(`ann@${'ü'.repeat(31)}x.de`).value).toBe(`ann@${'ü'.repeat(31)}x.de`);
    expect(refusal(`ann@${'ü'.repeat(32)}.de`)).toMatch(/domain/);
  });

  /** An address of exactly `total` bytes made of valid labels. */
  function addressOfBytes(total: number): string {
    const local = 'l'.repeat(64);
    let rest = total - bytes(local) - 1; // minus "@"
    const labels: string[] = [];
    while (rest > 0) {
      const size = Math.min(63, rest);
      // Leave room for the dot before the next label, and never leave a 0-byte label behind.
      const take = rest - size === 1 ? size - 1 : size;
      labels.push('d'.repeat(take));
      rest -= take;
      if (rest > 0) rest -= 1; // the dot
    }
    return `${local}@${labels.join('.')}`;
  }

  it('whole address: 254 bytes pass, 255 are refused', () => {
    const ok254 = addressOfBytes(254);
    const bad255 = addressOfBytes(255);
    expect(bytes(ok254)).toBe(254);
    expect(bytes(bad255)).toBe(255);
    expect(accepted(ok254).value).toBe(ok254);
    expect(refusal(bad255)).toBe('must be at most 254 bytes');
  });

  it('whole address counts UTF-8 bytes', () => {
    // Replace the last ASCII byte of a 253-byte address with a 2-byte character: 254 bytes, accepted.
    const ascii253 = addressOfBytes(253);
    const at254 = `${ascii253.slice(0, -1)}é`;
    expect(bytes(at254)).toBe(254);
    expect(accepted(at254).value).toBe(at254);
    const ascii254 = addressOfBytes(254);
    const at255 = `${ascii254.slice(0, -1)}é`;
    expect(bytes(at255)).toBe(255);
    expect(refusal(at255)).toBe('must be at most 254 bytes');
  });

  it('surrounding whitespace does not count towards the limit', () => {
    const ok254 = addressOfBytes(254);
    expect(accepted(`   ${ok254}   `).value).toBe(ok254);
  });

  it('the stored (domain lower-cased) address obeys the byte limits too', () => {
    // U+023A (Ⱥ, 2 bytes) lower-cases to U+2C65 (ⱥ, 3 bytes): a label of 31 Ⱥ is 62 bytes as
    // typed but 93 bytes as stored, so it must be refused rather than stored over the limit.
    expect(bytes('Ⱥ'.repeat(31))).toBe(62);
    expect(bytes('Ⱥ'.repeat(31).toLowerCase())).toBe(93);
    expect(refusal(`ann@${'Ⱥ'.repeat(31)}.io`)).toMatch(/domain/);
    // A label that stays within 63 bytes once lower-cased is fine.
    const label = 'Ⱥ'.repeat(21); // 42 bytes typed, 63 stored
    const email = accepted(`ann@${label}.io`);
    expect(email.value).toBe(`ann@${label.toLowerCase()}.io`);
    for (const part of email.value.split('@')[1]!.split('.')) expect(bytes(part)).toBeLessThanOrEqual(63);
  });

  it('the whole stored address obeys the 254-byte limit', () => {
    // 64 local bytes + "@" + four labels of 21 Ⱥ (42 bytes each typed, 63 stored) + ".i":
    // 238 bytes as typed, 322 bytes once the domain is lower-cased.
    const labels = Array.from({ length: 4 }, () => 'Ⱥ'.repeat(21)).join('.');
    const raw = `${'l'.repeat(64)}@${labels}.i`;
    expect(bytes(raw)).toBe(238);
    expect(bytes(`${'l'.repeat(64)}@${labels.toLowerCase()}.i`)).toBe(322);
    expect(refusal(raw)).toBe('must be at most 254 bytes');
  });
});

describe('Email key', () => {
  it('is the same for addresses that differ only in case', () => {
    const a = accepted('Ann@x.io');
    const b = accepted('ann@X.IO');
    expect(a.value).not.toBe(b.value); // the local part keeps its case
    expect(a.key).toBe(b.key);
    expect(a.key).toBe('ann@x.io');
  });

  it('differs for different addresses', () => {
    expect(accepted('ann@x.io').key).not.toBe(accepted('anne@x.io').key);
    expect(accepted('ann@x.io').key).not.toBe(accepted('ann@y.io').key);
  });

  it('lower-cases non-ASCII letters too', () => {
    expect(accepted('ÄNN@x.io').key).toBe(accepted('änn@X.IO').key);
  });

  it('emailKey of a raw input equals the key of its parsed Email (trim + NFC + lower-case)', () => {
    const raw = '  Rene\u0301@Example.COM ';
    expect(emailKey(raw)).toBe(accepted(raw).key);
    expect(emailKey(raw)).toBe('ren\u00e9@example.com');
  });

  it('fromTrusted rebuilds an address as stored, with the same key', () => {
    const parsed = accepted('Ann@Example.com');
    const restored = Email.fromTrusted(parsed.value);
    expect(restored.value).toBe(parsed.value);
    expect(restored.key).toBe(parsed.key);
  });
});
