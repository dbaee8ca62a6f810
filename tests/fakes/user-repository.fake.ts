import type { UserListQuery, UserRepository } from '../../src/application/ports/user.repository.port.js';
import { UserStatus } from '../../src/domain/identity/user-status.js';
import { UserAlreadyExistsError } from '../../src/domain/identity/identity.errors.js';
import type { User } from '../../src/domain/identity/user.entity.js';
import type { UserId } from '../../src/domain/identity/value-objects/user-id.value-object.js';

/** A write as the unit of work replays it at commit. */
type UserWrite = { readonly kind: 'save'; readonly user: User } | { readonly kind: 'update'; readonly user: User; readonly readUpdatedAt: Date };

/**
 * Users in a Map, with the two rules of the real table: the email key is unique (as the
 * `users_email_key_unique` index) and an update only lands on the row as it was read
 * (`where updated_at = readUpdatedAt`). Every write is journalled for FakeUnitOfWork.
 */
export class FakeUserRepository implements UserRepository {
  readonly journal: UserWrite[] = [];

  constructor(private readonly rows = new Map<string, User>()) {}

  /** The users stored, in insertion order. */
  get all(): User[] {
    return [...this.rows.values()];
  }

  /** A copy with the same rows and an empty journal: what a transaction starts from. */
  snapshot(): FakeUserRepository {
    return new FakeUserRepository(new Map(this.rows));
  }

  /** Applies `writes` all or none: on any failure this repository is left as it was. */
  applyAll(writes: readonly UserWrite[]): void {
    const next = this.snapshot();
    for (const write of writes) {
      if (write.kind === 'save') next.insert(write.user);
      else next.replace(write.user, write.readUpdatedAt);
    }
    this.rows.clear();
    for (const [id, user] of next.rows) this.rows.set(id, user);
  }

  findById(id: UserId): Promise<User | undefined> {
    return Promise.resolve(this.rows.get(id.value));
  }

  findByIds(ids: readonly UserId[]): Promise<User[]> {
    return Promise.resolve(ids.flatMap((id) => this.rows.get(id.value) ?? []));
  }

  /** No other transaction runs inside one test step, so the lock has nothing to hold off. */
  findByIdForUpdate(id: UserId): Promise<User | undefined> {
    return this.findById(id);
  }

  /** ListUsers' page, as the SQL has it: ids in order, the filters, the limit. */
  list(query: UserListQuery): Promise<User[]> {
    const users = this.all
      .filter((user) => (query.status === undefined ? user.status !== UserStatus.Deleted : user.status === query.status))
      .filter((user) => query.afterId === undefined || user.id.value > query.afterId)
      .filter((user) => query.emailKeyPrefix === undefined || user.email.key.startsWith(query.emailKeyPrefix))
      .sort((a, b) => (a.id.value < b.id.value ? -1 : 1));
    return Promise.resolve(users.slice(0, query.limit));
  }

  findByEmail(emailKey: string): Promise<User | undefined> {
    return Promise.resolve(this.all.find((user) => user.email.key === emailKey));
  }

  existsByEmail(emailKey: string): Promise<boolean> {
    return Promise.resolve(this.all.some((user) => user.email.key === emailKey));
  }

  save(user: User): Promise<void> {
    // Thrown inside the executor, a refused insert becomes the rejection, as from the database.
    return new Promise((resolve) => {
      this.insert(user);
      this.journal.push({ kind: 'save', user });
      resolve();
    });
  }

  update(user: User, readUpdatedAt: Date): Promise<boolean> {
    const written = this.replace(user, readUpdatedAt);
    if (written) this.journal.push({ kind: 'update', user, readUpdatedAt });
    return Promise.resolve(written);
  }

  private insert(user: User): void {
    if (this.rows.has(user.id.value)) throw new Error(`duplicate primary key ${user.id.value}`);
    if (this.all.some((other) => other.email.key === user.email.key)) throw new UserAlreadyExistsError();
    this.rows.set(user.id.value, user);
  }

  private replace(user: User, readUpdatedAt: Date): boolean {
    const current = this.rows.get(user.id.value);
    if (current === undefined || current.updatedAt.getTime() !== readUpdatedAt.getTime()) return false;
    this.rows.set(user.id.value, user);
    return true;
  }
}
