import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { REVOCATION_CHANNEL } from '../db/migrations/0007-create-sessions.js';
import { PgListener } from '../db/pg-listener.js';
import type { Metrics } from '../observability/metrics.js';
import type { InMemoryRevocationList, UserRevocationState } from './in-memory-revocation-list.js';

export interface RevocationFeedOptions {
  readonly knex: Knex;
  readonly list: InMemoryRevocationList;
  /** Unset (the embedded database): no LISTEN; resyncs only, and after local commits. */
  readonly connectionString: string | undefined;
  readonly resyncSeconds: number;
  readonly metrics: Pick<Metrics, 'revocationPropagationSeconds' | 'revocationResyncs'>;
  readonly logger: Logger;
}

type Notification =
  | { kind: 'session'; id: string; revokedAt: number; at: number }
  | { kind: 'user'; id: string; status: string; tokensValidAfter: number | null; updatedAt: number; at: number };

interface UserRow {
  id: string;
  status: string;
  tokens_valid_after: Date | null;
  updated_at: Date;
}

/**
 * Keeps the in-memory revocation list current: the database's triggers NOTIFY every
 * revocation at commit (migration 0007), applied here within milliseconds; a full resync at
 * start (before the service answers), after every reconnect of the listener, and every
 * REVOCATION_RESYNC_SECONDS catches up on anything a lost connection missed.
 */
export class RevocationFeed {
  private readonly listener: PgListener | undefined;
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  private again = false;
  /** Notifications that arrived while a resync was reading: applied again over its snapshot. */
  private arrivedDuringSync: Notification[] | undefined;

  constructor(private readonly options: RevocationFeedOptions) {
    this.listener =
      options.connectionString === undefined
        ? undefined
        : new PgListener({
            connectionString: options.connectionString,
            channel: REVOCATION_CHANNEL,
            // The pid tells replicas on one host apart (pg_stat_activity shows the name).
            applicationName: `identity-revocation-listener ${process.pid}`,
            name: 'revocation listener',
            onNotification: (payload) => this.onNotification(payload),
            onListening: () => this.resyncSoon(),
            logger: options.logger,
          });
  }

  /** Loads every revocation that still matters, then listens and resyncs periodically. */
  async start(): Promise<void> {
    await this.resync();
    this.listener?.start();
    this.timer = setInterval(() => this.resyncSoon(), this.options.resyncSeconds * 1000).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.listener?.stop();
    await this.syncing;
  }

  /** A resync now, or right after the one running (never two at once). */
  resyncSoon(): void {
    if (this.syncing !== undefined) {
      this.again = true;
      return;
    }
    void this.resync().catch((error: unknown) => this.options.logger.warn({ err: error }, 'revocation resync failed; retrying at the next period'));
  }

  private resync(): Promise<void> {
    this.syncing ??= (async () => {
      try {
        do {
          this.again = false;
          await this.readAll();
        } while (this.again);
      } finally {
        this.syncing = undefined;
      }
    })();
    return this.syncing;
  }

  private async readAll(): Promise<void> {
    const { knex, list } = this.options;
    this.arrivedDuringSync = [];
    try {
      const since = list.horizonStart();
      const sessions = (await knex('sessions').select('id', 'revoked_at').where('revoked_at', '>', since)) as { id: string; revoked_at: Date }[];
      const users = (await knex('users')
        .select('id', 'status', 'tokens_valid_after', 'updated_at')
        .where((q) => {
          void q.whereNot('status', 'active').andWhere('updated_at', '>', since);
        })
        .orWhere('tokens_valid_after', '>', since)) as UserRow[];
      for (const row of sessions) list.revokeSession(row.id, new Date(row.revoked_at).getTime());
      list.replaceUsers(users.map(toState));
      for (const notification of this.arrivedDuringSync) this.apply(notification);
      list.prune();
      this.options.metrics.revocationResyncs.inc();
    } finally {
      this.arrivedDuringSync = undefined;
    }
  }

  private onNotification(payload: string): void {
    let notification: Notification;
    try {
      notification = JSON.parse(payload) as Notification;
    } catch (error) {
      this.options.logger.warn({ err: error }, 'revocation notification is not JSON; resyncing');
      this.resyncSoon();
      return;
    }
    this.apply(notification);
    this.arrivedDuringSync?.push(notification);
    this.options.metrics.revocationPropagationSeconds.observe(Math.max(0, Date.now() - notification.at) / 1000);
  }

  private apply(notification: Notification): void {
    if (notification.kind === 'session') this.options.list.revokeSession(notification.id, notification.revokedAt);
    else {
      this.options.list.updateUser({
        userId: notification.id,
        status: notification.status,
        tokensValidAfterMs: notification.tokensValidAfter ?? undefined,
        updatedAtMs: notification.updatedAt,
      });
    }
  }
}

const toState = (row: UserRow): UserRevocationState => ({
  userId: row.id,
  status: row.status,
  tokensValidAfterMs: row.tokens_valid_after === null ? undefined : new Date(row.tokens_valid_after).getTime(),
  updatedAtMs: new Date(row.updated_at).getTime(),
});
