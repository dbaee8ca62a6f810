import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { Refreshed } from '../../application/use-cases/refresh-token.use-case.js';

/**
 * The access and refresh token of a session, as Authenticate and RefreshToken both answer
 * them (fields 1–3 and 5–7 of AuthenticateResponse, 1–6 of RefreshTokenResponse). The one
 * place a refresh token is revealed: into the response that hands it to its owner.
 */
export function toTokenPair({ token, session, refreshToken }: Refreshed) {
  return {
    accessToken: token.token,
    tokenType: 'Bearer',
    expiresAt: timestampFromDate(token.expiresAt),
    refreshToken: refreshToken.reveal(),
    refreshExpiresAt: timestampFromDate(session.refreshExpiresAt),
    sessionId: session.id.value,
  };
}
