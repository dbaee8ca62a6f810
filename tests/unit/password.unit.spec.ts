import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import { dictionary } from '@zxcvbn-ts/language-common';
import { describe, expect, it } from 'vitest';
import { PasswordPolicy } from '../../src/domain/identity/password-policy.js';
import { Email } from '../../src/domain/identity/value-objects/email.value-object.js';
import { PasswordHash } from '../../src/domain/identity/value-objects/password-hash.value-object.js';
import { MAX_PASSWORD_BYTES, PlainPassword } from '../../src/domain/identity/value-objects/plain-password.value-object.js';
import { createLogger } from '../../src/infrastructure/observability/logger.js';

/** The shipped list, built the way the composition root builds it. */
const commonList = dictionary['passwords-common'] ?? [];
const commonPasswords: ReadonlySet<string> = new Set(commonList.map((word) => word.toLowerCase()));
const policy = new PasswordPolicy({ minLength: 8, commonPasswords });

const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

function email(raw: string): Email {
  const parsed = Email.parse(raw);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

function accepted(raw: string, forEmail?: Email): PlainPassword {
  const result = policy.check(raw, forEmail);
  if (!result.ok) throw new Error(`expected ${JSON.stringify(raw)} to be accepted, got "${result.error}"`);
  return result.value;
}

function refusal(raw: string, forEmail?: Email): string {
  const result = policy.check(raw, forEmail);
  if (result.ok) throw new Error(`expected ${JSON.stringify(raw)} to be refused`);
  return result.error;
}

/** Not in the common list, so only the rule under test can refuse it. */
function uncommon(text: string): string {
  expect(commonPasswords.has(text.normalize('NFKC').toLowerCase())).toBe(false);
  return text;
}

describe('PlainPassword.parse (the checks Authenticate makes)', () => {
  it('keeps the password NFKC-normalised', () => {
    const parsed = PlainPassword.parse('ｐａｓｓ\uFB01'); // fullwidth letters and the "fi" ligature
    expect(parsed.ok && parsed.value.reveal()).toBe('passfi');
  });

  it('refuses an empty password', () => {
    expect(PlainPassword.parse('')).toEqual({ ok: false, error: 'is required' });
  });

  it('does not trim: spaces are part of the password', () => {
    const parsed = PlainPassword.parse('  secret  ');
    expect(parsed.ok && parsed.value.reveal()).toBe('  secret  ');
  });

  it(`accepts ${MAX_PASSWORD_BYTES} bytes and refuses ${MAX_PASSWORD_BYTES + 1}`, () => {
    expect(MAX_PASSWORD_BYTES).toBe(72);
    expect(PlainPassword.parse('x'.repeat(72)).ok).toBe(true);
    expect(PlainPassword.parse('x'.repeat(73))).toEqual({ ok: false, error: 'must be at most 72 bytes in UTF-8' });
  });

  it('refuses a lone surrogate as invalid UTF-8', () => {
    expect(PlainPassword.parse('secret\uD800pass')).toEqual({ ok: false, error: 'must be valid UTF-8' });
  });

  it('counts its length in code points', () => {
    const parsed = PlainPassword.parse('😀😀😀');
    expect(parsed.ok && parsed.value.length).toBe(3);
  });
});

describe('PasswordPolicy.check', () => {
  it('accepts a long passphrase and returns it unchanged', () => {
    const text = uncommon('correct horse battery staple 42');
    expect(accepted(text).reveal()).toBe(text);
  });

  it('requires at least 8 characters, counted in code points', () => {
    expect(refusal(uncommon('Zq7#vL2'))).toBe('must be at least 8 characters');
    expect(accepted(uncommon('Zq7#vL2!')).reveal()).toBe('Zq7#vL2!');
    // 7 emoji are 14 UTF-16 units but only 7 characters.
    expect(refusal('🐙🦊🐢🦉🐝🦀🐬')).toBe('must be at least 8 characters');
    expect(accepted('🐙🦊🐢🦉🐝🦀🐬🐌').length).toBe(8);
  });

  it('takes the minimum from its options', () => {
    const strict = new PasswordPolicy({ minLength: 12, commonPasswords });
    expect(strict.check(uncommon('Zq7#vL2!Zq7'), undefined)).toEqual({ ok: false, error: 'must be at least 12 characters' });
    expect(strict.check(uncommon('Zq7#vL2!Zq7#'), undefined).ok).toBe(true);
  });

  it('measures the minimum after NFKC (one ligature character counts as its expansion)', () => {
    // "\uFB03" (ﬃ) is one character typed and three ("ffi") after NFKC: 6 typed, 8 normalised.
    const typed = uncommon('Zq7#\uFB03!');
    expect([...typed]).toHaveLength(6);
    expect(accepted(typed).reveal()).toBe('Zq7#ffi!');
  });

  describe('the 72-byte ceiling', () => {
    it('72 ASCII characters pass, 73 are refused (no separate character cap)', () => {
      const base = 'Tr0ub4dor&3-horse-battery-'; // 26 chars
      const s72 = uncommon(base.repeat(3).slice(0, 72));
      const s73 = uncommon(base.repeat(3).slice(0, 73));
      expect(bytes(s72)).toBe(72);
      expect(accepted(s72).reveal()).toBe(s72);
      expect(refusal(s73)).toBe('must be at most 72 bytes in UTF-8');
    });

    it.each([
      ['é (2 bytes)', 'é', 36],
      ['€ (3 bytes)', '€', 24],
      ['😀 (4 bytes)', '😀', 18],
    ])('counts multi-byte characters in bytes: %s', (_label, char, fits) => {
      expect(bytes(char.repeat(fits))).toBe(72);
      expect(accepted(char.repeat(fits)).length).toBe(fits);
      expect(refusal(char.repeat(fits + 1))).toBe('must be at most 72 bytes in UTF-8');
      // 71 ASCII bytes + one multi-byte character crosses the limit in only 72 characters.
      expect(refusal(`${'k'.repeat(71)}${char}`)).toBe('must be at most 72 bytes in UTF-8');
    });

    it('measures bytes after NFKC, not as typed', () => {
      // ¼ is 2 bytes typed and "1⁄4" (5 bytes) after NFKC: 14 fit (70 bytes), 15 do not (75).
      expect(bytes('¼'.repeat(15))).toBe(30);
      expect(accepted('¼'.repeat(14)).reveal()).toBe('1\u20444'.repeat(14));
      expect(refusal('¼'.repeat(15))).toBe('must be at most 72 bytes in UTF-8');
      // Fullwidth letters are 3 bytes typed and 1 byte after NFKC: 72 of them (216 bytes) pass.
      const fullwidth = 'Ｚｑ７＃ｖＬ２！'.repeat(9);
      expect(bytes(fullwidth)).toBe(216);
      expect(accepted(uncommon(fullwidth)).reveal()).toBe('Zq7#vL2!'.repeat(9));
    });
  });

  it('refuses a password containing NUL anywhere', () => {
    expect(refusal(uncommon('Zq7#vL2!\0tail'))).toBe('must not contain NUL');
    expect(refusal(uncommon('\0Zq7#vL2!tail'))).toBe('must not contain NUL');
    expect(refusal(uncommon('Zq7#vL2!tail\0'))).toBe('must not contain NUL');
  });

  describe('common passwords (the shipped @zxcvbn-ts list)', () => {
    it('the list is the real one and contains password1', () => {
      expect(commonPasswords.size).toBeGreaterThan(10_000);
      expect(commonPasswords.has('password1')).toBe(true);
    });

    it('refuses password1 in any case and in fullwidth form', () => {
      expect(refusal('password1')).toBe('is too common');
      expect(refusal('PassWord1')).toBe('is too common');
      expect(refusal('ｐａｓｓｗｏｒｄ１')).toBe('is too common');
    });

    it('refuses every list entry the other rules would let through (sampled across the list)', () => {
      const candidates = commonList.filter((word) => [...word].length >= 8 && bytes(word) <= 72 && !word.includes('\0'));
      expect(candidates.length).toBeGreaterThan(1_000);
      const step = Math.floor(candidates.length / 200);
      for (let i = 0; i < candidates.length; i += step) {
        const word = candidates[i]!;
        expect(policy.check(word, undefined), word).toEqual({ ok: false, error: 'is too common' });
        expect(policy.check(word.toUpperCase(), undefined).ok, word.toUpperCase()).toBe(false);
      }
    });

    it('does not refuse a password merely containing a common one', () => {
      expect(commonPasswords.has('password1')).toBe(true);
      expect(accepted(uncommon('password1-but-with-a-long-tail-9137')).reveal()).toBe('password1-but-with-a-long-tail-9137');
    });
  });

  describe('not the email', () => {
    const owner = email('Ann.Lee@Example.com');

    it('refuses the email itself, compared case-insensitively', () => {
      expect(refusal(owner.value, owner)).toBe('must not equal the email');
      expect(refusal('ann.lee@example.com', owner)).toBe('must not equal the email');
      expect(refusal('ANN.LEE@EXAMPLE.COM', owner)).toBe('must not equal the email');
    });

    it('compares after normalisation (fullwidth characters fold to ASCII under NFKC)', () => {
      expect(refusal('ａｎｎ．ｌｅｅ＠ｅｘａｍｐｌｅ．ｃｏｍ', owner)).toBe('must not equal the email');
    });

    it('accepts the email as a password when the email is unknown, and other text when it is known', () => {
      expect(accepted(uncommon('ann.lee@example.com')).reveal()).toBe('ann.lee@example.com');
      expect(accepted(uncommon('ann.lee@example.com!'), owner).reveal()).toBe('ann.lee@example.com!');
    });
  });

  it('reports the byte ceiling before the other rules (a 73-byte common-looking password)', () => {
    expect(refusal(`password1${'1'.repeat(64)}`)).toBe('must be at most 72 bytes in UTF-8');
  });
});

describe('secrets never print', () => {
  const secret = 'Zq7#vL2!-very-secret';
  const hashText = '$2b$10$abcdefghijklmnopqrstuuC2E8H6LZ1rmvSgk3w1xOAX2aH8kHqm6';

  const printers: [string, (value: unknown) => string][] = [
    ['String()', (value) => String(value)],
    ['JSON.stringify', (value) => JSON.stringify(value)],
    ['JSON.stringify of a containing object', (value) => JSON.stringify({ user: { credential: value } })],
    ['util.inspect', (value) => inspect(value)],
    ['util.inspect of a containing object', (value) => inspect({ deep: { credential: value } }, { depth: 10 })],
    ['util.inspect showing hidden members', (value) => inspect(value, { showHidden: true, depth: 10 })],
    ['object spread', (value) => JSON.stringify({ ...(value as object) })],
  ];

  const password = () => {
    const parsed = PlainPassword.parse(secret);
    if (!parsed.ok) throw new Error(parsed.error);
    return parsed.value;
  };

  it.each(printers)('PlainPassword through %s', (_label, print) => {
    const value = password();
    expect(value.reveal()).toBe(secret);
    const text = print(value);
    expect(text).not.toContain(secret);
    expect(text).not.toContain('very-secret');
  });

  it.each(printers)('PasswordHash through %s', (_label, print) => {
    const value = PasswordHash.fromTrusted(hashText);
    expect(value.reveal()).toBe(hashText);
    const text = print(value);
    expect(text).not.toContain(hashText);
    expect(text).not.toContain('abcdefghijklmnop');
  });

  it('both show a placeholder rather than nothing', () => {
    expect(String(password())).toBe('[REDACTED]');
    expect(JSON.stringify({ password: password() })).toBe('{"password":"[REDACTED]"}');
    expect(inspect(password())).toContain('REDACTED');
    expect(String(PasswordHash.fromTrusted(hashText))).toBe('[REDACTED]');
    expect(inspect(PasswordHash.fromTrusted(hashText))).toContain('REDACTED');
  });

  it('a log line with either one, under any key, carries no secret', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    const logger = createLogger({ level: 'info', nodeEnv: 'test', destination });
    logger.info({ attempt: { given: password(), stored: PasswordHash.fromTrusted(hashText) } }, 'login');
    logger.info({ password: secret, nested: { password_hash: hashText } }, 'raw strings under secret keys');
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line).not.toContain(secret);
      expect(line).not.toContain(hashText);
    }
    expect(lines[0]).toContain('[REDACTED]');
  });
});
