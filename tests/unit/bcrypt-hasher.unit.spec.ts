import { performance } from 'node:perf_hooks';
import bcrypt from 'bcrypt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OverloadedError } from '../../src/application/application.errors.js';
import { PasswordHash } from '../../src/domain/identity/value-objects/password-hash.value-object.js';
import { PlainPassword } from '../../src/domain/identity/value-objects/plain-password.value-object.js';
import { BcryptHasher } from '../../src/infrastructure/crypto/bcrypt.hasher.js';
import { createMetrics } from '../../src/infrastructure/observability/metrics.js';

const plain = (raw: string): PlainPassword => {
  const parsed = PlainPassword.parse(raw);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
};

const metrics = createMetrics();
let hasher: BcryptHasher; // cost 10, the one most tests use
let hasher11: BcryptHasher; // configured one cost higher, for needsRehash
const started: BcryptHasher[] = [];

async function start(options: Parameters<typeof BcryptHasher.start>[0]): Promise<BcryptHasher> {
  const instance = await BcryptHasher.start(options);
  started.push(instance);
  return instance;
}

/** How many operations of a kind the hasher has run, from its own histogram. */
async function operations(operation: 'hash' | 'compare'): Promise<number> {
  const { values } = await metrics.hashSeconds.get();
  return values.find((v) => v.metricName === 'bcrypt_duration_seconds_count' && v.labels['operation'] === operation)?.value ?? 0;
}

beforeAll(async () => {
  hasher = await start({ cost: 10, workers: 1, queueMax: 16, metrics });
  hasher11 = await start({ cost: 11, workers: 1, queueMax: 16 });
});

afterAll(async () => {
  await Promise.all(started.map((instance) => instance.close()));
});

describe('BcryptHasher round trip (real bcrypt, cost 10)', () => {
  it('hashes at the configured cost and verifies the same password', async () => {
    const hash = await hasher.hash(plain('correct horse battery'));
    expect(hash.reveal()).toMatch(/^\$2[aby]\$10\$[./A-Za-z0-9]{53}$/);
    expect(bcrypt.getRounds(hash.reveal())).toBe(10);
    expect(await hasher.verify(plain('correct horse battery'), hash)).toBe(true);
  });

  it('refuses a different password, including one differing only in case or a last character', async () => {
    const hash = await hasher.hash(plain('correct horse battery'));
    expect(await hasher.verify(plain('Correct horse battery'), hash)).toBe(false);
    expect(await hasher.verify(plain('correct horse batterY'), hash)).toBe(false);
    expect(await hasher.verify(plain('correct horse battery '), hash)).toBe(false);
  });

  it('salts: the same password hashes differently each time, and both verify', async () => {
    const [a, b] = await Promise.all([hasher.hash(plain('same password')), hasher.hash(plain('same password'))]);
    expect(a.reveal()).not.toBe(b.reveal());
    expect(await hasher.verify(plain('same password'), a)).toBe(true);
    expect(await hasher.verify(plain('same password'), b)).toBe(true);
  });

  it('round-trips unicode and NFKC: the fullwidth form verifies against the ASCII one', async () => {
    const hash = await hasher.hash(plain('pässwörd-😀-李'));
    expect(await hasher.verify(plain('pa\u0308sswo\u0308rd-😀-李'), hash)).toBe(true);
    const ascii = await hasher.hash(plain('Secret42'));
    expect(await hasher.verify(plain('Ｓｅｃｒｅｔ４２'), ascii)).toBe(true);
  });

  it('uses all 72 bytes: a change in the 72nd byte does not verify', async () => {
    const base = 'x'.repeat(71);
    const hash = await hasher.hash(plain(`${base}a`));
    expect(await hasher.verify(plain(`${base}a`), hash)).toBe(true);
    expect(await hasher.verify(plain(`${base}b`), hash)).toBe(false);
  });

  it('verify works for a hash read back from storage', async () => {
    const stored = (await hasher.hash(plain('from the database'))).reveal();
    expect(await hasher.verify(plain('from the database'), PasswordHash.fromTrusted(stored))).toBe(true);
  });
});

describe('BcryptHasher.needsRehash', () => {
  it('is true for a cost-10 hash when the configured cost is 11', async () => {
    const hash10 = await hasher.hash(plain('upgrade me'));
    expect(hasher11.needsRehash(hash10)).toBe(true);
  });

  it('is false at the configured cost, and for a higher cost', async () => {
    const hash10 = await hasher.hash(plain('keep me'));
    const hash11 = await hasher11.hash(plain('keep me'));
    expect(hasher.needsRehash(hash10)).toBe(false);
    expect(hasher11.needsRehash(hash11)).toBe(false);
    expect(hasher.needsRehash(hash11)).toBe(false);
  });

  it.each([
    ['garbage', 'garbage'],
    ['an empty string', ''],
    ['an argon2 hash', '$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG'],
  ])('is true for %s (not a bcrypt hash it can read)', (_label, value) => {
    expect(hasher.needsRehash(PasswordHash.fromTrusted(value))).toBe(true);
  });
});

describe('BcryptHasher.verify without a hash (unknown email)', () => {
  it('answers false', async () => {
    expect(await hasher.verify(plain('anything at all'), undefined)).toBe(false);
  });

  it('still runs exactly one bcrypt comparison', async () => {
    const before = await operations('compare');
    await hasher.verify(plain('anything at all'), undefined);
    expect(await operations('compare')).toBe(before + 1);
  });

  it('takes about as long as a real comparison (the dummy hash has the configured cost)', async () => {
    const hash = await hasher.hash(plain('timing check'));
    const time = async (run: () => Promise<unknown>) => {
      let best = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        await run();
        best = Math.min(best, performance.now() - t0);
      }
      return best;
    };
    const real = await time(() => hasher.verify(plain('wrong password'), hash));
    const dummy = await time(() => hasher.verify(plain('wrong password'), undefined));
    expect(dummy).toBeGreaterThan(real * 0.5);
  });
});

describe('BcryptHasher and NUL', () => {
  it('a password containing NUL never verifies, not even against its own hash', async () => {
    const withNul = plain('secret\0pass');
    const hash = await hasher.hash(withNul);
    // bcrypt itself would accept it, so only the hasher's own rule refuses it.
    expect(bcrypt.compareSync('secret\0pass', hash.reveal())).toBe(true);
    expect(await hasher.verify(withNul, hash)).toBe(false);
    expect(await hasher.verify(plain('secret'), hash)).toBe(false);
  });

  it('nor against the hash of the part before the NUL', async () => {
    const hash = await hasher.hash(plain('secretpass'));
    expect(await hasher.verify(plain('secretpass\0junk'), hash)).toBe(false);
    expect(await hasher.verify(plain('secretpass'), hash)).toBe(true);
  });
});

describe('BcryptHasher load shedding', () => {
  it('with queueMax 0 and one worker, concurrent calls past the first fail at once with OverloadedError', async () => {
    const shedding = await start({ cost: 10, workers: 1, queueMax: 0, metrics });
    const rejectedBefore = (await metrics.hashRejected.get()).values[0]?.value ?? 0;
    const settledAt: number[] = [];
    const calls = Array.from({ length: 4 }, (_, i) => {
      const call = shedding.hash(plain(`concurrent ${i}`));
      call.then(
        () => (settledAt[i] = performance.now()),
        () => (settledAt[i] = performance.now()),
      );
      return call;
    });
    const settled = await Promise.allSettled(calls);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'rejected']);
    for (const [i, s] of settled.entries()) {
      if (s.status !== 'rejected') continue;
      expect(s.reason).toBeInstanceOf(OverloadedError);
      // Shed before the one admitted job finished, not after queueing behind it.
      expect(settledAt[i]).toBeLessThan(settledAt[0]!);
    }
    expect((await metrics.hashRejected.get()).values[0]?.value).toBe(rejectedBefore + 3);
    // Once the burst is over, the hasher serves again.
    const first = settled[0]!;
    expect(first.status === 'fulfilled' && (await shedding.verify(plain('concurrent 0'), first.value))).toBe(true);
  });

  it('admits workers + queueMax jobs and sheds the rest', async () => {
    const small = await start({ cost: 10, workers: 1, queueMax: 2 });
    const settled = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => small.hash(plain(`burst ${i}`))));
    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(3);
    const reasons = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason] : []));
    expect(reasons).toHaveLength(3);
    for (const reason of reasons) expect(reason).toBeInstanceOf(OverloadedError);
  });

  it('verify is shed the same way', async () => {
    const shedding = await start({ cost: 10, workers: 1, queueMax: 0 });
    const settled = await Promise.allSettled([shedding.verify(plain('a password'), undefined), shedding.verify(plain('a password'), undefined)]);
    expect(settled.map((s) => s.status).sort()).toEqual(['fulfilled', 'rejected']);
    const rejected = settled.find((s) => s.status === 'rejected');
    expect(rejected?.reason).toBeInstanceOf(OverloadedError);
  });

  it('an already aborted signal fails with its reason and runs nothing', async () => {
    const before = await operations('hash');
    const reason = new Error('deadline passed');
    await expect(hasher.hash(plain('too late'), AbortSignal.abort(reason))).rejects.toBe(reason);
    expect(await operations('hash')).toBe(before);
  });
});
