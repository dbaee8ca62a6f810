import { describe, expect, it } from 'vitest';
import { isPublished, keyState, planRotation, signingKeyAt, type KeyTimes } from '../../src/infrastructure/tokens/key-lifecycle.js';

const T0 = Date.parse('2026-06-01T00:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms);
const S = 1000;

describe('keyState', () => {
  const key: KeyTimes = { activatesAt: at(100 * S), retiresAt: at(200 * S), removesAt: at(300 * S) };

  it('is pending until the exact activation instant', () => {
    expect(keyState(key, at(0))).toBe('pending');
    expect(keyState(key, at(100 * S - 1))).toBe('pending');
    expect(keyState(key, at(100 * S))).toBe('active');
  });

  it('is active until the exact retirement instant', () => {
    expect(keyState(key, at(200 * S - 1))).toBe('active');
    expect(keyState(key, at(200 * S))).toBe('retired');
  });

  it('is retired until the exact removal instant, then removed for good', () => {
    expect(keyState(key, at(300 * S - 1))).toBe('retired');
    expect(keyState(key, at(300 * S))).toBe('removed');
    expect(keyState(key, at(10_000 * S))).toBe('removed');
  });

  it('a key never retired stays active forever', () => {
    const forever: KeyTimes = { activatesAt: at(0), retiresAt: null, removesAt: null };
    expect(keyState(forever, at(-1))).toBe('pending');
    expect(keyState(forever, at(0))).toBe('active');
    expect(keyState(forever, at(1e12))).toBe('active');
  });

  it('a retired key without a removal time stays published', () => {
    const kept: KeyTimes = { activatesAt: at(0), retiresAt: at(10 * S), removesAt: null };
    expect(keyState(kept, at(1e12))).toBe('retired');
  });

  it('isPublished is true for pending, active and retired keys, false once removed', () => {
    expect(isPublished(key, at(0))).toBe(true);
    expect(isPublished(key, at(150 * S))).toBe(true);
    expect(isPublished(key, at(250 * S))).toBe(true);
    expect(isPublished(key, at(300 * S - 1))).toBe(true);
    expect(isPublished(key, at(300 * S))).toBe(false);
  });
});

describe('signingKeyAt', () => {
  const old = { name: 'old', activatesAt: at(0), retiresAt: at(100 * S), removesAt: at(200 * S) };
  const current = { name: 'current', activatesAt: at(100 * S), retiresAt: null, removesAt: null };
  const pending = { name: 'pending', activatesAt: at(500 * S), retiresAt: null, removesAt: null };

  it('picks the key active at that instant, switching exactly at the hand-over', () => {
    expect(signingKeyAt([old, current, pending], at(100 * S - 1))?.name).toBe('old');
    expect(signingKeyAt([old, current, pending], at(100 * S))?.name).toBe('current');
  });

  it('never signs with a pending key', () => {
    expect(signingKeyAt([pending], at(0))).toBeUndefined();
    expect(signingKeyAt([current, pending], at(500 * S - 1))?.name).toBe('current');
  });

  it('picks the newest when several are active, whatever the order', () => {
    const a = { name: 'a', activatesAt: at(0), retiresAt: null, removesAt: null };
    const b = { name: 'b', activatesAt: at(10 * S), retiresAt: null, removesAt: null };
    const c = { name: 'c', activatesAt: at(5 * S), retiresAt: null, removesAt: null };
    expect(signingKeyAt([a, b, c], at(20 * S))?.name).toBe('b');
    expect(signingKeyAt([b, c, a], at(20 * S))?.name).toBe('b');
    expect(signingKeyAt([c, a], at(20 * S))?.name).toBe('c');
    // Once the newest becomes active, it takes over from the others.
    const d = { name: 'd', activatesAt: at(30 * S), retiresAt: null, removesAt: null };
    expect(signingKeyAt([a, b, c, d], at(30 * S - 1))?.name).toBe('b');
    expect(signingKeyAt([a, b, c, d], at(30 * S))?.name).toBe('d');
  });

  it('is undefined with no keys, or only retired and removed ones', () => {
    expect(signingKeyAt([], at(0))).toBeUndefined();
    expect(signingKeyAt([old], at(150 * S))).toBeUndefined();
    expect(signingKeyAt([old], at(250 * S))).toBeUndefined();
  });
});

describe('planRotation', () => {
  const now = at(0);
  const lead = 1800;
  const ttl = 3600;
  const skew = 30;
  const plan = planRotation(now, lead, ttl, skew);

  it('activates the new key after the publish lead', () => {
    expect(plan.activatesAt.getTime() - now.getTime()).toBe(lead * S);
  });

  it('retires the current key exactly when the new one starts signing (no gap, no overlap)', () => {
    expect(plan.retiresAt.getTime()).toBe(plan.activatesAt.getTime());
  });

  it('keeps the retired key published until the last token it signed has expired, leeway included', () => {
    // The last token is signed just before retiresAt and is accepted until exp + skew.
    expect(plan.removesAt.getTime() - plan.retiresAt.getTime()).toBe((ttl + skew) * S);
  });

  it('applied to a current key and a new one, there is always exactly one signing key and its predecessor stays verifiable', () => {
    const currentKey: KeyTimes = { activatesAt: at(-1e6), retiresAt: plan.retiresAt, removesAt: plan.removesAt };
    const next: KeyTimes = { activatesAt: plan.activatesAt, retiresAt: null, removesAt: null };
    for (const t of [0, lead * S - 1, lead * S, (lead + ttl) * S, (lead + ttl + skew) * S - 1, (lead + ttl + skew) * S]) {
      const signer = signingKeyAt([currentKey, next], at(t));
      expect(signer, `at +${t} ms`).toBe(t < lead * S ? currentKey : next);
      expect(isPublished(next, at(t))).toBe(true);
    }
    const lastSignedAt = lead * S - 1;
    const lastAcceptedAt = lastSignedAt + (ttl + skew) * S - 1;
    expect(isPublished(currentKey, at(lastAcceptedAt))).toBe(true);
    expect(isPublished(currentKey, at((lead + ttl + skew) * S))).toBe(false);
  });

  it('with no lead, the new key signs at once', () => {
    const immediate = planRotation(now, 0, ttl, skew);
    expect(immediate.activatesAt.getTime()).toBe(now.getTime());
  });
});
