import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Code, ConnectError, createContextKey, createContextValues, type ContextValues, type HandlerContext } from '@connectrpc/connect';
import { clientAddressResolver } from './client-address.resolver.js';

/** What is read of a request: Node's request objects, and the fast path's stream and headers. */
export interface RequestLike {
  readonly socket: { readonly remoteAddress?: string | undefined };
  readonly headers: IncomingHttpHeaders;
}

export const kClientAddress = createContextKey<string>('unknown', { description: 'the caller address throttling counts against' });
export const kRequestId = createContextKey<string>('', { description: 'x-request-id, received or generated' });
/** The request's signal with the server's own request timeout folded in (made when first asked for). */
export const kRequestSignal = createContextKey<{ readonly signal: AbortSignal } | undefined>(undefined, { description: 'aborts when the call must stop' });

const REQUEST_ID = /^[\w.:-]{1,128}$/;

export interface ClientAddressOptions {
  /** Read x-forwarded-for at all. */
  readonly trustProxy: boolean;
  /** CIDRs of the proxies whose x-forwarded-for entries are believed (already validated by config). */
  readonly trustedProxies: readonly string[];
}

/** The two things every call is known by: the caller's address and its request id. */
export interface RequestIdentity {
  /** The peer, or with trustProxy the address the trusted proxies report (see client-address.resolver). */
  clientAddress(req: RequestLike): string;
  /** The caller's x-request-id when it looks like one, else a new UUID. */
  requestId(headers: IncomingHttpHeaders): string;
}

export function requestIdentity(options: ClientAddressOptions): RequestIdentity {
  const clientAddress = clientAddressResolver(options.trustProxy ? options.trustedProxies : undefined);
  return {
    clientAddress: (req) => clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for']),
    requestId(headers) {
      const given = headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
  };
}

/** The request's identity as context values, read once per request for the handlers. */
export function requestContextValues(identity: RequestIdentity) {
  return (req: RequestLike): ContextValues => {
    const values = createContextValues();
    values.set(kClientAddress, identity.clientAddress(req));
    values.set(kRequestId, identity.requestId(req.headers));
    return values;
  };
}

export const signalOf = (ctx: HandlerContext): AbortSignal => ctx.values.get(kRequestSignal)?.signal ?? ctx.signal;

/** Reasons the server itself gives for stopping a call: the deadline, and shutting down. */
const SERVER_REASONS: ReadonlySet<Code> = new Set([Code.DeadlineExceeded, Code.Unavailable]);

/**
 * Why a call stopped when its request signal aborted: the deadline, this server shutting down,
 * or else the caller went away. A reset stream reaches us as whatever code the client's HTTP/2
 * stack chose (Node's clients reset with INTERNAL_ERROR on abort), but from this side it is a
 * cancelled call, not a fault of ours to count and log as Internal.
 */
export function whyCallStopped(signal: AbortSignal): ConnectError {
  const reason: unknown = signal.reason;
  if (reason instanceof ConnectError && SERVER_REASONS.has(reason.code)) return reason;
  return callerCancelled(reason);
}

/** The caller went away (`reason`: how its side ended the call). */
export const callerCancelled = (reason: unknown): ConnectError => new ConnectError('the caller cancelled the call', Code.Canceled, undefined, undefined, reason);
