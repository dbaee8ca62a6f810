import { DatabaseSync } from 'node:sqlite';
import type { DecodedEvent } from '@identity-service/events';

type UserStatus = 'active' | 'disabled' | 'deleted';

/** One row of the projection: what this subscriber knows of a user. Erased users keep only their id. */
export interface ProjectedUser {
  readonly userId: string;
  readonly email: string | null;
  readonly firstName: string | null;
  readonly lastName: string | null;
  readonly status: UserStatus;
}

/**
 * The subscriber's own copy of the users, in SQLite (node:sqlite: nothing to install). Each
 * event is applied in one transaction with the record of its id, so a redelivered event is
 * recognised and skipped: the projection is idempotent, as at-least-once delivery requires.
 */
export class UserProjection {
  private constructor(private readonly db: DatabaseSync) {
    db.exec(`
      create table if not exists users (
        user_id text primary key, email text, first_name text, last_name text, status text not null
      );
      create table if not exists handled_events (event_id text primary key);
    `);
  }

  static open(path: string): UserProjection {
    return new UserProjection(new DatabaseSync(path));
  }

  /** Applies one event; false when it had been applied already (a redelivery). */
  apply(event: DecodedEvent): boolean {
    this.db.exec('begin');
    try {
      const fresh = this.db.prepare('insert into handled_events (event_id) values (?) on conflict do nothing').run(event.id).changes > 0;
      if (fresh) this.change(event);
      this.db.exec('commit');
      return fresh;
    } catch (error) {
      this.db.exec('rollback');
      throw error;
    }
  }

  users(): ProjectedUser[] {
    const rows = this.db.prepare('select user_id, email, first_name, last_name, status from users order by user_id').all() as Record<string, string | null>[];
    return rows.map((row) => ({ userId: row['user_id']!, email: row['email']!, firstName: row['first_name']!, lastName: row['last_name']!, status: row['status'] as UserStatus }));
  }

  close(): void {
    this.db.close();
  }

  private change(event: DecodedEvent): void {
    // Types this projection does not need (passwords, sessions) and unknown ones change nothing.
    if (!event.known) return;
    const run = (sql: string, ...values: (string | null)[]) => this.db.prepare(sql).run(...values);
    switch (event.type) {
      case 'identity.v1.UserRegistered': {
        const { userId, email, firstName, lastName } = event.event;
        run("insert into users values (?, ?, ?, ?, 'active') on conflict (user_id) do nothing", userId, email, firstName, lastName);
        return;
      }
      case 'identity.v1.UserProfileUpdated':
        run("update users set first_name = ?, last_name = ? where user_id = ? and status <> 'deleted'", event.event.firstName, event.event.lastName, event.event.userId);
        return;
      case 'identity.v1.UserDisabled':
        run("update users set status = 'disabled' where user_id = ? and status <> 'deleted'", event.event.userId);
        return;
      case 'identity.v1.UserEnabled':
        run("update users set status = 'active' where user_id = ? and status <> 'deleted'", event.event.userId);
        return;
      case 'identity.v1.UserDeleted':
        // Erasure: the personal data goes; the id stays as a tombstone so no late event brings the user back.
        run("update users set email = null, first_name = null, last_name = null, status = 'deleted' where user_id = ?", event.event.userId);
        return;
      default:
        return;
    }
  }
}
