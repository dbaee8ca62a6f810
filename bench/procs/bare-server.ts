/**
 * Baseline for cached VerifyToken: the same stack as the service (Connect's Node adapter on
 * Node's h2c server, same HTTP/2 settings) with a VerifyToken that returns a constant. The
 * service's cached path can at best match it; the gap is the service's own per-call work.
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ConnectRouter } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { IdentityService } from '../../src/gen/identity/v1/identity_pb.js';
import { serveParent } from '../lib/child-server.js';

const issuedAt = new Date();
const ANSWER = {
  userId: '00000000-0000-4000-8000-000000000000',
  tokenId: '00000000-0000-4000-8000-000000000001',
  issuedAt: timestampFromDate(issuedAt),
  expiresAt: timestampFromDate(new Date(issuedAt.getTime() + 3_600_000)),
};

const routes = (router: ConnectRouter) => router.service(IdentityService, { verifyToken: () => ANSWER });

// The service's defaults: MAX_CONCURRENT_STREAMS 100, MAX_HEADER_BYTES 16384, MAX_MESSAGE_BYTES 1 MiB.
const server = http2.createServer(
  { settings: { maxConcurrentStreams: 100, maxHeaderListSize: 16_384 }, maxSessionInvalidFrames: 100, maxSessionRejectedStreams: 100 },
  connectNodeAdapter({ routes, readMaxBytes: 1_048_576 }),
);

serveParent({
  listen: () =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
    }),
});
