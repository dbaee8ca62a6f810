/** Why a session was revoked: stored in sessions.revoked_reason and sent in SessionRevoked. */
export const SessionRevokedReason = {
  Logout: 'logout',
  RefreshTokenReused: 'refresh_token_reused',
  PasswordChanged: 'password_changed',
  UserDisabled: 'user_disabled',
  UserDeleted: 'user_deleted',
  Admin: 'admin',
} as const;
export type SessionRevokedReason = (typeof SessionRevokedReason)[keyof typeof SessionRevokedReason];
