import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { VerifiedToken } from '../../application/ports/token-provider.port.js';
import { VerifyTokenResponseSchema } from '../../gen/identity/v1/identity_pb.js';
import { frozenAnswers } from './frozen-answers.js';

/** VerifyToken's answer; a cached token's is built once (see frozenAnswers). */
export const toVerifyTokenResponse = frozenAnswers((token: VerifiedToken) =>
  create(VerifyTokenResponseSchema, {
    userId: token.userId,
    expiresAt: timestampFromDate(token.expiresAt),
    issuedAt: timestampFromDate(token.issuedAt),
    tokenId: token.tokenId,
    sessionId: token.sessionId ?? '',
  }),
);
