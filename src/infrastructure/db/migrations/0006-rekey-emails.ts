import type { Knex } from 'knex';
import { emailKey } from '../../../domain/identity/value-objects/email.value-object.js';
import { CodedError } from '../../../domain/shared/coded-error.js';

export const name = '0006-rekey-emails';

/** Rows read at a time: the whole table never sits in memory (the image's heap is 96 MB). */
const BATCH_ROWS = 5_000;
/** Ids of colliding users named in the error; the count is always complete. */
const MAX_GROUPS_NAMED = 20;

interface Rekey {
  readonly id: string;
  readonly key: string;
}

type KeyFunction = (email: string) => string;

/** The key before this migration: NFC, then lower-case (registration and login disagreed on it). */
const previousKey: KeyFunction = (email) => email.trim().normalize('NFC').toLowerCase();

/**
 * Recomputes users.email_key with the one key function registration and login now share
 * (`emailKey`: NFC, lower-case, NFC). Rows whose new keys coincide are two registered users
 * that are now one address: merging them silently would hand one person's account to the
 * other, and keeping an old key would lock one of them out without a word. So the migration
 * stops, changes nothing, and names the users for an operator to decide (see the README).
 */
export async function up(knex: Knex): Promise<void> {
  const changes = await keysThatChange(knex, emailKey);
  const collisions = await collisionsOf(knex, changes);
  if (collisions.length > 0) throw new EmailKeyCollisionError(collisions);
  await rewriteKeys(knex, changes);
}

/** Back to the previous keys: never a collision, since rows equal under the old key are equal under the new. */
export async function down(knex: Knex): Promise<void> {
  await rewriteKeys(knex, await keysThatChange(knex, previousKey));
}

async function keysThatChange(knex: Knex, key: KeyFunction): Promise<Rekey[]> {
  const changes: Rekey[] = [];
  let after: string | undefined;
  for (;;) {
    const rows = (await knex('users')
      .select('id', 'email', 'email_key')
      .modify((query) => {
        if (after !== undefined) void query.where('id', '>', after);
      })
      .orderBy('id')
      .limit(BATCH_ROWS)) as { id: string; email: string; email_key: string }[];
    for (const row of rows) {
      const wanted = key(row.email);
      if (wanted !== row.email_key) changes.push({ id: row.id, key: wanted });
    }
    if (rows.length < BATCH_ROWS) return changes;
    after = rows.at(-1)?.id;
  }
}

/** Groups of user ids (two or more) that the new keys would make one address. */
async function collisionsOf(knex: Knex, changes: readonly Rekey[]): Promise<string[][]> {
  const byKey = new Map<string, string[]>();
  for (const { id, key } of changes) byKey.set(key, [...(byKey.get(key) ?? []), id]);
  const changing = new Set(changes.map((change) => change.id));
  const keys = [...byKey.keys()];
  for (let from = 0; from < keys.length; from += 1_000) {
    const holders = (await knex('users').select('id', 'email_key').whereIn('email_key', keys.slice(from, from + 1_000))) as { id: string; email_key: string }[];
    // A row that keeps its key while another row moves onto it.
    for (const holder of holders) if (!changing.has(holder.id)) byKey.get(holder.email_key)?.push(holder.id);
  }
  return [...byKey.values()].filter((ids) => ids.length > 1);
}

/** In two steps, so that no intermediate state trips the unique index whatever the order. */
async function rewriteKeys(knex: Knex, changes: readonly Rekey[]): Promise<void> {
  if (changes.length === 0) return;
  const ids = changes.map((change) => change.id);
  // A real key always holds an @, so these cannot meet one.
  for (let from = 0; from < ids.length; from += 1_000) {
    await knex('users').whereIn('id', ids.slice(from, from + 1_000)).update({ email_key: knex.raw("'rekey:' || id") });
  }
  for (const { id, key } of changes) await knex('users').where({ id }).update({ email_key: key });
}

/** Names counts and user ids, never emails (they are personal data and end up in logs). */
class EmailKeyCollisionError extends CodedError {
  readonly code = 'DB.EMAIL_KEY_COLLISION';

  constructor(readonly groups: readonly (readonly string[])[]) {
    const users = groups.reduce((sum, ids) => sum + ids.length, 0);
    const named = groups.slice(0, MAX_GROUPS_NAMED).map((ids) => `[${ids.join(', ')}]`).join(' ');
    const more = groups.length > MAX_GROUPS_NAMED ? ` and ${groups.length - MAX_GROUPS_NAMED} more groups` : '';
    super(
      `${name}: ${groups.length} group(s) of users (${users} users) have emails that are one address under the email key rule ` +
        `(NFC, lower-case, NFC); no row was changed. User ids by group: ${named}${more}. ` +
        'In each group keep one user and give the others another email (UPDATE users SET email = ... WHERE id = ...; ' +
        'this migration recomputes email_key from email) or delete them, then run `identity migrate` again.',
    );
  }
}
