export const UserStatus = {
  Active: 'active',
  Disabled: 'disabled',
  /** Erased: the id stays as a tombstone (user management). */
  Deleted: 'deleted',
} as const;
export type UserStatus = (typeof UserStatus)[keyof typeof UserStatus];
