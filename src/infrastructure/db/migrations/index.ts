import type { Knex } from 'knex';
import * as createUsers from './0001-create-users.js';
import * as createOutbox from './0002-create-outbox.js';
import * as createSigningKeys from './0003-create-signing-keys.js';
import * as createLoginAttempts from './0004-create-login-attempts.js';
import * as notifyOutboxCommits from './0005-notify-outbox-commits.js';
import * as rekeyEmails from './0006-rekey-emails.js';
import * as createSessions from './0007-create-sessions.js';
import * as userManagement from './0008-user-management.js';

interface Migration extends Knex.Migration {
  readonly name: string;
}

const migrations: readonly Migration[] = [createUsers, createOutbox, createSigningKeys, createLoginAttempts, notifyOutboxCommits, rekeyEmails, createSessions, userManagement];

/**
 * Migrations are imported, not discovered on disk, so they run the same from TypeScript
 * sources, compiled output and a bundled image.
 */
export const migrationSource: Knex.MigrationSource<Migration> = {
  getMigrations: () => Promise.resolve([...migrations]),
  getMigrationName: (migration) => migration.name,
  getMigration: (migration) => Promise.resolve(migration),
};

/** What this build needs applied; a database may be ahead (a newer build's migrations). */
export const migrationNames: readonly string[] = migrations.map((migration) => migration.name);
