import type { Knex } from 'knex';
import { UserAlreadyExistsError } from '../../domain/identity/identity.errors.js';
import type { UserListQuery, UserRepository } from '../../application/ports/user.repository.port.js';
import { UserStatus } from '../../domain/identity/user-status.js';
import type { User } from '../../domain/identity/user.entity.js';
import type { UserId } from '../../domain/identity/value-objects/user-id.value-object.js';
import { isUniqueViolation, withDbErrors } from './db-errors.js';
import { userMapper, type UserRow } from './user.mapper.js';

/** Users in PostgreSQL, through a Knex instance or transaction. */
export class KnexUserRepository implements UserRepository {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  findById(id: UserId): Promise<User | undefined> {
    return this.findOne({ id: id.value });
  }

  findByIds(ids: readonly UserId[]): Promise<User[]> {
    return withDbErrors(async () => {
      const rows = (await this.db('users').whereIn('id', ids.map((id) => id.value))) as UserRow[];
      return rows.map((row) => userMapper.toDomain(row));
    });
  }

  findByIdForUpdate(id: UserId): Promise<User | undefined> {
    return withDbErrors(async () => {
      const row = (await this.db('users').where({ id: id.value }).forUpdate().first()) as UserRow | undefined;
      return row === undefined ? undefined : userMapper.toDomain(row);
    });
  }

  /**
   * Keyset pagination: `id > afterId order by id limit n`, every value bound as a parameter.
   * The prefix is a LIKE pattern with its wildcards escaped, under the C collation so that
   * users_email_key_prefix_idx serves it as a range; a status is served by users_status_id_idx,
   * no filter by the primary key.
   */
  list(query: UserListQuery): Promise<User[]> {
    return withDbErrors(async () => {
      const q = this.db('users').select('*').orderBy('id').limit(query.limit);
      if (query.status !== undefined) q.where('status', query.status);
      else q.whereNot('status', UserStatus.Deleted);
      if (query.afterId !== undefined) q.where('id', '>', query.afterId);
      if (query.emailKeyPrefix !== undefined && query.emailKeyPrefix !== '') {
        q.whereRaw(`(email_key collate "C") like ? escape '\\'`, [`${escapeLike(query.emailKeyPrefix)}%`]);
      }
      const rows = (await q) as UserRow[];
      return rows.map((row) => userMapper.toDomain(row));
    });
  }

  findByEmail(emailKey: string): Promise<User | undefined> {
    // PostgreSQL text cannot hold NUL (the query would fail), and no stored address has one.
    if (emailKey.includes('\0')) return Promise.resolve(undefined);
    return this.findOne({ email_key: emailKey });
  }

  existsByEmail(emailKey: string): Promise<boolean> {
    return withDbErrors(async () => {
      const row: unknown = await this.db('users').select(this.db.raw('1')).where({ email_key: emailKey }).first();
      return row !== undefined;
    });
  }

  save(user: User): Promise<void> {
    return withDbErrors(async () => {
      try {
        await this.db('users').insert(userMapper.toPersistence(user));
      } catch (error) {
        if (isUniqueViolation(error, 'users_email_key_unique')) throw new UserAlreadyExistsError({ cause: error });
        throw error;
      }
    });
  }

  update(user: User, readUpdatedAt: Date): Promise<boolean> {
    return withDbErrors(async () => {
      const { id, created_at: _createdAt, ...changes } = userMapper.toPersistence(user);
      const count = await this.db('users').where({ id, updated_at: readUpdatedAt }).update(changes);
      return count === 1;
    });
  }

  private findOne(where: Partial<UserRow>): Promise<User | undefined> {
    return withDbErrors(async () => {
      const row = (await this.db('users').where(where).first()) as UserRow | undefined;
      return row === undefined ? undefined : userMapper.toDomain(row);
    });
  }
}

/** A LIKE pattern that matches `text` literally: its wildcards and the escape character escaped. */
const escapeLike = (text: string): string => text.replace(/[\\%_]/g, (c) => `\\${c}`);
