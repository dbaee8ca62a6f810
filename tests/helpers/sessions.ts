import { Code, ConnectError, type Client } from '@connectrpc/connect';
import type { IdentityService } from '../../src/gen/identity/v1/identity_pb.js';

/** The ConnectError a call ended with; fails the test when it succeeded. */
export async function connectError(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error('expected the call to fail');
}

/** The status a VerifyToken call gets: 'ok' or the Code name. */
export async function verifyOutcome(client: Client<typeof IdentityService>, token: string): Promise<string> {
  try {
    await client.verifyToken({ token });
    return 'ok';
  } catch (error) {
    return Code[ConnectError.from(error).code];
  }
}

/** A clock a test moves by hand (ServiceOverrides.clock). */
export function manualClock(start = new Date()) {
  let now = start.getTime();
  return {
    now: () => new Date(now),
    advanceSeconds(seconds: number) {
      now += seconds * 1000;
    },
  };
}
