import { TLSSocket } from 'node:tls';
import { createContextKey, type ContextValues, type Interceptor } from '@connectrpc/connect';
import type { ConnectNodeAdapterOptions } from '@connectrpc/connect-node';
import proxyaddr from 'proxy-addr';
import { CallerNotAllowedError } from '../../application/application.errors.js';
import { Health } from '../../gen/grpc/health/v1/health_pb.js';
import { canonicalAddress, UNKNOWN_CLIENT } from './client-address.resolver.js';

type NodeServerRequest = Parameters<NonNullable<ConnectNodeAdapterOptions['contextValues']>>[0];

/**
 * Who called the management port, as the audit line names it: the client certificate's
 * identity (`certificate`), the one the mesh sidecar forwarded in x-forwarded-client-cert
 * (`forwarded`, only with TRUST_PROXY=true and a peer inside TRUSTED_PROXIES), or else the
 * peer address (`peer`). `identities` are what MANAGEMENT_ALLOWED_CALLERS is matched against.
 */
export interface Caller {
  readonly id: string;
  readonly source: 'certificate' | 'forwarded' | 'peer';
  readonly identities: readonly string[];
}

export const kCaller = createContextKey<Caller>({ id: UNKNOWN_CLIENT, source: 'peer', identities: [] }, { description: 'the management caller' });

export interface CallerOptions {
  readonly trustProxy: boolean;
  readonly trustedProxies: readonly string[];
}

/** The URI and DNS SANs of a certificate (`URI:spiffe://…, DNS:ops.example`), URIs first. */
export function subjectAltNames(text: string | undefined): string[] {
  if (text === undefined || text === '') return [];
  const entries = text.split(/,\s*(?=[A-Za-z ]+:)/).map((entry) => entry.trim());
  const of = (kind: string) => entries.filter((entry) => entry.startsWith(`${kind}:`)).map((entry) => unquote(entry.slice(kind.length + 1)));
  return [...of('URI'), ...of('DNS')];
}

const unquote = (value: string) => (value.startsWith('"') && value.endsWith('"') ? (JSON.parse(value) as string) : value);

/**
 * The URI of the nearest hop's element of Envoy's x-forwarded-client-cert
 * (`By=…;Hash=…;URI=spiffe://cluster.local/ns/ops/sa/admin`); elements are comma-separated,
 * the last one added by the proxy in front of us. Quoted values may hold `,` and `;`.
 */
export function forwardedClientUri(header: string | string[] | undefined): string | undefined {
  const text = Array.isArray(header) ? header.join(',') : header;
  if (text === undefined || text === '' || text.length > 16_384) return undefined;
  const elements = splitOutsideQuotes(text, ',');
  const last = elements.at(-1) ?? '';
  for (const pair of splitOutsideQuotes(last, ';')) {
    const at = pair.indexOf('=');
    if (at > 0 && pair.slice(0, at).trim().toLowerCase() === 'uri') {
      const value = pair.slice(at + 1).trim();
      const uri = value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1).replace(/\\(.)/g, '$1') : value;
      return uri === '' ? undefined : uri;
    }
  }
  return undefined;
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && quoted && i + 1 < text.length) {
      current += c + text[++i]!;
    } else if (c === '"') {
      quoted = !quoted;
      current += c;
    } else if (c === separator && !quoted) {
      parts.push(current);
      current = '';
    } else current += c;
  }
  parts.push(current);
  return parts;
}

function tlsSocketOf(req: NodeServerRequest): TLSSocket | undefined {
  const socket = 'stream' in req ? req.stream.session?.socket : req.socket;
  return socket instanceof TLSSocket ? socket : undefined;
}

/** Finds the caller of each request (see Caller); added to the management port's context values. */
export function callerResolver(options: CallerOptions) {
  const trusted = options.trustProxy ? proxyaddr.compile([...options.trustedProxies]) : undefined;
  return (req: NodeServerRequest, values: ContextValues): ContextValues => {
    const peer = canonicalAddress(req.socket?.remoteAddress) ?? UNKNOWN_CLIENT;
    const tls = tlsSocketOf(req);
    const certificate = tls?.authorized === true ? tls.getPeerCertificate() : undefined;
    if (certificate !== undefined && Object.keys(certificate).length > 0) {
      const identities = subjectAltNames(certificate.subjectaltname);
      const commonName = certificate.subject?.CN;
      const id = identities[0] ?? (typeof commonName === 'string' ? `CN=${commonName}` : `serial:${certificate.serialNumber}`);
      return values.set(kCaller, { id, source: 'certificate', identities });
    }
    if (trusted !== undefined && peer !== UNKNOWN_CLIENT && trusted(peer, 0)) {
      const uri = forwardedClientUri(req.headers['x-forwarded-client-cert']);
      if (uri !== undefined) return values.set(kCaller, { id: uri, source: 'forwarded', identities: [uri] });
    }
    return values.set(kCaller, { id: peer, source: 'peer', identities: [] });
  };
}

/**
 * With MANAGEMENT_ALLOWED_CALLERS set, only those identities may call (health excepted, so
 * that probes keep working): anyone else is refused with CallerNotAllowedError
 * (PERMISSION_DENIED) before the handler runs.
 */
export function allowedCallersInterceptor(allowed: readonly string[] | undefined): Interceptor {
  const set = new Set(allowed ?? []);
  return (next) => (req) => {
    if (allowed === undefined || req.service.typeName === Health.typeName) return next(req);
    const caller = req.contextValues.get(kCaller);
    if (!caller.identities.some((identity) => set.has(identity))) return Promise.reject(new CallerNotAllowedError());
    return next(req);
  };
}
