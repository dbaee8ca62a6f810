/**
 * An Envoy ext_authz client for the end-to-end suites. No Envoy binary can be installed on
 * these machines, so Check is driven with grpc-js and the vendored protos (@grpc/proto-loader),
 * with requests shaped as Envoy's HTTP ext_authz filter sends them: header keys lower-cased
 * (pseudo-headers included), `attributes.request.http`, source and destination peers with
 * socket addresses and SPIFFE principals (an Istio sidecar's), the request time.
 */
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import { grpc } from './clients.js';

const PROTO_ROOT = fileURLToPath(new URL('../../proto', import.meta.url));

const definition = protoLoader.loadSync('envoy/service/auth/v3/external_auth.proto', {
  includeDirs: [PROTO_ROOT],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const loaded = grpc.loadPackageDefinition(definition) as unknown as {
  envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } };
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = Record<string, any>;

interface HeaderOption {
  readonly header: { readonly key: string; readonly value: string };
  readonly append_action: string;
  readonly keep_empty_value: boolean;
}

/** A CheckResponse as grpc-js decodes it (keepCase, enums as names, oneofs named). */
export interface CheckResponse {
  readonly status: { readonly code: number; readonly message: string; readonly details: unknown[] } | null;
  readonly http_response: 'ok_response' | 'denied_response' | undefined;
  readonly ok_response?: { readonly headers: HeaderOption[]; readonly headers_to_remove: string[]; readonly response_headers_to_add: HeaderOption[] };
  readonly denied_response?: { readonly status: { readonly code: string } | null; readonly headers: HeaderOption[]; readonly body: string };
  readonly dynamic_metadata: unknown;
}

export interface RequestShape {
  /** Extra or replacing request headers, lower-case keys as Envoy sends them. */
  readonly headers?: Record<string, string>;
  /** `encode_raw_headers: true`: the headers go in `header_map`, values as bytes, instead of `headers`. */
  readonly rawHeaders?: boolean;
  readonly method?: string;
  readonly path?: string;
}

/** The CheckRequest an Istio sidecar's ext_authz filter sends for a plain HTTP/1.1 GET. */
export function envoyCheckRequest(shape: RequestShape = {}): Json {
  const method = shape.method ?? 'GET';
  const path = shape.path ?? '/orders/42?expand=items';
  const host = 'orders.shop.svc.cluster.local:8080';
  const requestId = randomUUID();
  const headers: Record<string, string> = {
    ':authority': host,
    ':method': method,
    ':path': path,
    ':scheme': 'http',
    accept: '*/*',
    'user-agent': 'curl/8.5.0',
    'x-forwarded-proto': 'http',
    'x-request-id': requestId,
    'x-envoy-attempt-count': '1',
    ...shape.headers,
  };
  const now = Date.now();
  const http: Json = {
    id: requestId,
    method,
    path,
    host,
    scheme: 'http',
    protocol: 'HTTP/1.1',
    size: '-1',
  };
  if (shape.rawHeaders === true) {
    http['header_map'] = { headers: Object.entries(headers).map(([key, value]) => ({ key, raw_value: Buffer.from(value) })) };
  } else {
    http['headers'] = headers;
  }
  return {
    attributes: {
      source: {
        address: { socket_address: { address: '10.244.1.17', port_value: 47_612 } },
        principal: 'spiffe://cluster.local/ns/shop/sa/frontend',
      },
      destination: {
        address: { socket_address: { address: '10.244.2.9', port_value: 8080 } },
        principal: 'spiffe://cluster.local/ns/shop/sa/orders',
      },
      request: { time: { seconds: String(Math.floor(now / 1000)), nanos: (now % 1000) * 1_000_000 }, http },
      metadata_context: {},
      route_metadata_context: {},
    },
  };
}

/** envoy.service.auth.v3.Authorization over grpc-js, Check as a promise. */
export class EnvoyAuthzClient {
  private readonly client: grpc.Client & Record<string, (...args: unknown[]) => unknown>;

  constructor(target: string) {
    this.client = new loaded.envoy.service.auth.v3.Authorization(target.replace(/^https?:\/\//, ''), grpc.credentials.createInsecure()) as never;
  }

  check(request: Json): Promise<CheckResponse> {
    const fn = this.client['Check'] as (req: Json, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: CheckResponse) => void) => void;
    return new Promise((resolve, reject) => {
      fn.call(this.client, request, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (error, response) => (error ? reject(error) : resolve(response)));
    });
  }

  /** Check for a request carrying `authorization: <value>` (no header at all when undefined). */
  checkAuthorization(value: string | undefined, shape: RequestShape = {}): Promise<CheckResponse> {
    return this.check(envoyCheckRequest({ ...shape, headers: { ...(value === undefined ? {} : { authorization: value }), ...shape.headers } }));
  }

  close(): void {
    this.client.close();
  }
}

/**
 * The request headers the upstream receives after an allowed Check, as Envoy's ext_authz filter
 * applies `ok_response`: each option by its append action, then `headers_to_remove`.
 */
export function upstreamHeaders(request: Record<string, string>, response: CheckResponse): Record<string, string> {
  if (response.http_response !== 'ok_response' || response.ok_response === undefined) throw new Error('not an ok_response');
  const headers = { ...request };
  for (const option of response.ok_response.headers) {
    const { key, value } = option.header;
    if (option.append_action === 'OVERWRITE_IF_EXISTS_OR_ADD') headers[key] = value;
    else if (option.append_action === 'ADD_IF_ABSENT') headers[key] ??= value;
    else headers[key] = headers[key] === undefined ? value : `${headers[key]},${value}`;
  }
  for (const name of response.ok_response.headers_to_remove) delete headers[name];
  return headers;
}

/** ext_authz_checks_total by result, read from /metrics on the admin port. */
export async function checkResults(adminUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const match of text.matchAll(/^ext_authz_checks_total\{result="([^"]+)"\} (\S+)$/gm)) counts[match[1]!] = Number(match[2]);
  return counts;
}
