import type { UserStatus } from '../../domain/identity/user-status.js';
import type { User } from '../../domain/identity/user.entity.js';
import { requireValid } from '../field-validation.js';
import { pageToken, parseEmailPrefix, parsePageSize, parseStatusFilter } from '../list-users-page.js';
import type { UserRepository } from '../ports/user.repository.port.js';

export interface ListUsersQuery {
  readonly pageSize: number;
  readonly pageToken: string;
  /** 'invalid': a status value the transport could not map (an unknown enum number). */
  readonly status: UserStatus | undefined | 'invalid';
  readonly emailPrefix: string;
}

export interface UserPage {
  readonly users: readonly User[];
  /** Empty on the last page. */
  readonly nextPageToken: string;
}

/**
 * One page of users in id order (keyset: `id > last id of the previous page`), filtered by
 * status and email prefix. One more row than the page is read to know whether a next page
 * exists, so the last page never hands out a token that leads to an empty one.
 */
export class ListUsers {
  constructor(private readonly users: UserRepository) {}

  async execute(query: ListUsersQuery): Promise<UserPage> {
    const { page_size: limit, status, email_prefix: emailKeyPrefix } = requireValid({
      page_size: parsePageSize(query.pageSize),
      status: parseStatusFilter(query.status),
      email_prefix: parseEmailPrefix(query.emailPrefix),
    });
    const { page_token: afterId } = requireValid({ page_token: pageToken.decode(query.pageToken, { status, emailKeyPrefix }) });
    const rows = await this.users.list({ limit: limit + 1, afterId, status, emailKeyPrefix });
    const users = rows.slice(0, limit);
    const last = users.at(-1);
    const nextPageToken = rows.length > limit && last !== undefined ? pageToken.encode({ afterId: last.id.value, status, emailKeyPrefix }) : '';
    return { users, nextPageToken };
  }
}
