import { OverloadedError } from '../../src/application/application.errors.js';
import type { PasswordHasher } from '../../src/application/ports/password-hasher.port.js';
import { PasswordHash } from '../../src/domain/identity/value-objects/password-hash.value-object.js';
import type { PlainPassword } from '../../src/domain/identity/value-objects/plain-password.value-object.js';

const SCHEME = 'fake';

/**
 * A hasher that "hashes" as `fake$<cost>$<password>`, with the behaviour of BcryptHasher a
 * use case can observe: an unknown user (no hash) still costs one comparison; a full queue
 * refuses with OverloadedError before any work; a caller whose signal aborts stops waiting
 * while the job itself has already run (bcrypt jobs are not cancelled). Only for tests: the
 * "hash" holds the password.
 */
export class FakePasswordHasher implements PasswordHasher {
  /** Jobs that ran: what a timing attacker would measure. */
  readonly calls = { hash: 0, verify: 0 };
  /** While true, every job is refused as with a full queue. */
  queueFull = false;

  constructor(readonly cost = 12) {}

  /** A stored hash as an earlier registration at `cost` would have left it. */
  static hashOf(password: string, cost: number): PasswordHash {
    return PasswordHash.fromTrusted(`${SCHEME}$${cost}$${password}`);
  }

  async hash(password: PlainPassword, signal?: AbortSignal): Promise<PasswordHash> {
    await this.runJob('hash', signal);
    return FakePasswordHasher.hashOf(password.reveal(), this.cost);
  }

  async verify(password: PlainPassword, hash: PasswordHash | undefined, signal?: AbortSignal): Promise<boolean> {
    await this.runJob('verify', signal);
    return hash !== undefined && parse(hash)?.password === password.reveal();
  }

  needsRehash(hash: PasswordHash): boolean {
    const parsed = parse(hash);
    return parsed === undefined || parsed.cost < this.cost;
  }

  private async runJob(kind: 'hash' | 'verify', signal?: AbortSignal): Promise<void> {
    if (this.queueFull) throw new OverloadedError();
    this.calls[kind]++;
    await Promise.resolve(); // a job answers asynchronously, as from a worker thread
    signal?.throwIfAborted();
  }
}

function parse(hash: PasswordHash): { cost: number; password: string } | undefined {
  const [scheme, cost, ...rest] = hash.reveal().split('$');
  if (scheme !== SCHEME || cost === undefined) return undefined;
  return { cost: Number(cost), password: rest.join('$') };
}
