import { describe, expect, it } from 'vitest';
import { PersonName } from '../../src/domain/identity/value-objects/person-name.value-object.js';

function accepted(raw: string): string {
  const result = PersonName.parse(raw);
  if (!result.ok) throw new Error(`expected ${JSON.stringify(raw)} to be accepted, got "${result.error}"`);
  return result.value.value;
}

function refusal(raw: string): string {
  const result = PersonName.parse(raw);
  if (result.ok) throw new Error(`expected ${JSON.stringify(raw)} to be refused, got ${JSON.stringify(result.value.value)}`);
  return result.error;
}

describe('PersonName.parse', () => {
  it.each(['Ann', 'Jean-Luc', "O'Brien", 'María José', '李', 'Ólafur', 'Nguyễn', 'X Æ A-12', '🙂'])('accepts %j as given', (raw) => {
    expect(accepted(raw)).toBe(raw);
  });

  it('trims surrounding whitespace and keeps inner spaces', () => {
    expect(accepted('  Mary Ann \t')).toBe('Mary Ann');
    expect(accepted('\u00a0Ann\u3000')).toBe('Ann');
  });

  it('normalises to NFC', () => {
    const decomposed = 'Zoe\u0308'; // e + combining diaeresis
    expect(accepted(decomposed)).toBe('Zo\u00eb');
    expect(accepted('\u1100\u1161')).toBe('\uac00'); // Hangul jamo compose to one syllable
  });

  it('refuses an empty or blank name', () => {
    expect(refusal('')).toBe('is required');
    expect(refusal('   ')).toBe('is required');
    expect(refusal('\n\t')).toBe('is required');
  });

  it('counts code points: 50 emoji (100 UTF-16 units) pass, 51 are refused', () => {
    const fifty = '😀'.repeat(50);
    expect(fifty.length).toBe(100);
    expect(accepted(fifty)).toBe(fifty);
    expect(refusal('😀'.repeat(51))).toBe('must be at most 50 characters');
  });

  it('50 ASCII characters pass, 51 are refused', () => {
    expect(accepted('a'.repeat(50))).toBe('a'.repeat(50));
    expect(refusal('a'.repeat(51))).toBe('must be at most 50 characters');
  });

  it('measures after trimming', () => {
    expect(accepted(`  ${'a'.repeat(50)}  `)).toBe('a'.repeat(50));
  });

  it('measures after NFC: 50 decomposed é (100 code points) compose to 50', () => {
    const decomposed = 'e\u0301'.repeat(50);
    expect([...decomposed]).toHaveLength(100);
    expect(accepted(decomposed)).toBe('\u00e9'.repeat(50));
  });

  it.each([
    ['NUL', 'An\0n'],
    ['NUL at the start', '\0Ann'],
    ['NUL at the end', 'Ann\0'],
    ['BEL', 'An\u0007n'],
    ['LF inside', 'Ann\nLee'],
    ['CR inside', 'Ann\rLee'],
    ['TAB inside', 'Ann\tLee'],
    ['ESC', '\u001b[31mAnn'],
    ['DEL', 'Ann\u007f'],
    ['a C1 control', 'Ann\u009b'],
  ])('refuses a control character: %s', (_label, raw) => {
    expect(refusal(raw)).toBe('must not contain control characters');
  });

  it.each([
    ['a lone high surrogate', 'Ann\uD83D'],
    ['a lone low surrogate', '\uDE00Ann'],
  ])('refuses invalid UTF-8: %s', (_label, raw) => {
    expect(refusal(raw)).toBe('must be valid UTF-8');
  });

  it('prints as its value', () => {
    const result = PersonName.parse(' Ann ');
    expect(result.ok && String(result.value)).toBe('Ann');
  });
});
