import { randomBytes } from 'node:crypto';
import bcrypt from 'bcrypt';
import { Piscina } from 'piscina';
import { OverloadedError } from '../../application/application.errors.js';
import type { PasswordHasher } from '../../application/ports/password-hasher.port.js';
import { PasswordHash } from '../../domain/identity/value-objects/password-hash.value-object.js';
import type { PlainPassword } from '../../domain/identity/value-objects/plain-password.value-object.js';
import type { Metrics } from '../observability/metrics.js';

export interface BcryptHasherOptions {
  readonly cost: number;
  /** Worker threads hashing in parallel. */
  readonly workers: number;
  /** Jobs allowed to wait for a worker; past that, callers get OverloadedError at once. */
  readonly queueMax: number;
  readonly metrics?: Pick<Metrics, 'hashQueueDepth' | 'hashSeconds' | 'hashRejected'>;
}

type Task = { name: 'hash'; password: string; cost: number } | { name: 'compare'; password: string; hash: string };

/**
 * bcrypt on its own bounded pool of worker threads, so hashing never shares libuv's thread
 * pool with token verification, and a full queue sheds load instead of adding latency.
 */
export class BcryptHasher implements PasswordHasher {
  private readonly pool: Piscina;
  private inFlight = 0;

  private constructor(
    private readonly options: BcryptHasherOptions,
    private readonly dummyHash: string,
    pool: Piscina,
  ) {
    this.pool = pool;
  }

  /** Starts the workers and makes the dummy hash that unknown emails are compared against. */
  static async start(options: BcryptHasherOptions): Promise<BcryptHasher> {
    const pool = new Piscina({
      filename: new URL('./bcrypt.worker.js', import.meta.url).href,
      minThreads: options.workers,
      maxThreads: options.workers,
      idleTimeout: Number.POSITIVE_INFINITY,
    });
    const dummy = (await pool.run({ password: randomBytes(18).toString('base64'), cost: options.cost }, { name: 'hash' })) as string;
    return new BcryptHasher(options, dummy, pool);
  }

  async hash(password: PlainPassword, signal?: AbortSignal): Promise<PasswordHash> {
    const hash = await this.run({ name: 'hash', password: password.reveal(), cost: this.options.cost }, signal);
    return PasswordHash.fromTrusted(hash as string);
  }

  async verify(password: PlainPassword, hash: PasswordHash | undefined, signal?: AbortSignal): Promise<boolean> {
    const text = password.reveal();
    const matches = await this.run({ name: 'compare', password: text, hash: hash?.reveal() ?? this.dummyHash }, signal);
    // bcrypt stops reading at NUL, so "secret\0anything" would match "secret": never accept it.
    return matches === true && hash !== undefined && !text.includes('\0');
  }

  needsRehash(hash: PasswordHash): boolean {
    try {
      return bcrypt.getRounds(hash.reveal()) < this.options.cost;
    } catch {
      return true; // not a bcrypt hash we can read: replace it
    }
  }

  /**
   * Closed last, after the API port: every call is answered or cut by then, so hashes still
   * queued have no one waiting and are dropped (waiting for them overran the shutdown
   * deadline under load); the ones running finish, as a synchronous hash cannot be stopped.
   */
  close(): Promise<void> {
    return this.pool.close({ force: true });
  }

  /**
   * Queues a job unless the queue is full. An aborted caller stops waiting at once, but the
   * job is not cancelled: piscina would terminate a worker in the middle of a synchronous hash,
   * and the thread would go on hashing beside its replacement. So the job runs to its end, and
   * until then it keeps its place in the count that bounds the queue.
   */
  private run(task: Task, signal?: AbortSignal): Promise<unknown> {
    const { metrics, workers, queueMax } = this.options;
    if (this.inFlight - workers >= queueMax) {
      metrics?.hashRejected.inc();
      return Promise.reject(new OverloadedError());
    }
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const { name, ...data } = task;
    const stopTimer = metrics?.hashSeconds.startTimer({ operation: name });
    this.inFlight++;
    metrics?.hashQueueDepth.set(Math.max(0, this.inFlight - workers));
    const job = this.pool.run(data, { name }).finally(() => {
      this.inFlight--;
      metrics?.hashQueueDepth.set(Math.max(0, this.inFlight - workers));
      stopTimer?.();
    });
    if (signal === undefined) return job;
    job.catch(() => undefined); // its outcome may go unread once the caller has gone
    return new Promise((resolve, reject) => {
      const abandon = () => reject(abortReason(signal));
      signal.addEventListener('abort', abandon, { once: true });
      job.then(resolve, reject).finally(() => signal.removeEventListener('abort', abandon));
    });
  }
}

const abortReason = (signal: AbortSignal): Error => (signal.reason instanceof Error ? signal.reason : new Error('aborted', { cause: signal.reason }));
