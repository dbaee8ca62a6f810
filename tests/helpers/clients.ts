import { fileURLToPath } from 'node:url';
import { createClient, type Client } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { IdentityService } from '../../src/gen/identity/v1/identity_pb.js';

export type Protocol = 'connect' | 'grpc' | 'grpc-web';

/** A Connect-ES client over HTTP/2 in the given protocol. */
export function connectClient(baseUrl: string, protocol: Protocol = 'connect'): Client<typeof IdentityService> {
  const options = { baseUrl, httpVersion: '2' as const };
  const transport =
    protocol === 'grpc' ? createGrpcTransport(options) : protocol === 'grpc-web' ? createGrpcWebTransport(options) : createConnectTransport(options);
  return createClient(IdentityService, transport);
}

const PROTO_ROOT = fileURLToPath(new URL('../../proto', import.meta.url));

const definition = protoLoader.loadSync(['identity/v1/identity.proto', 'grpc/health/v1/health.proto'], {
  includeDirs: [PROTO_ROOT],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const loaded = grpc.loadPackageDefinition(definition) as unknown as {
  identity: { v1: { IdentityService: grpc.ServiceClientConstructor } };
  grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

export interface GrpcCallOptions {
  readonly metadata?: Record<string, string>;
  readonly deadlineMs?: number;
}

/** The real gRPC client other teams use (grpc-js with proto-loader), unary calls as promises. */
export class GrpcIdentityClient {
  private readonly client: grpc.Client & Record<string, grpc.MethodDefinition<unknown, unknown> | ((...args: unknown[]) => unknown)>;

  constructor(target: string) {
    const address = target.replace(/^https?:\/\//, '');
    this.client = new loaded.identity.v1.IdentityService(address, grpc.credentials.createInsecure()) as never;
  }

  registerUser(request: Json, options?: GrpcCallOptions) {
    return this.call('RegisterUser', request, options);
  }
  authenticate(request: Json, options?: GrpcCallOptions) {
    return this.call('Authenticate', request, options);
  }
  verifyToken(request: Json, options?: GrpcCallOptions) {
    return this.call('VerifyToken', request, options);
  }
  refreshToken(request: Json, options?: GrpcCallOptions) {
    return this.call('RefreshToken', request, options);
  }
  logout(request: Json, options?: GrpcCallOptions) {
    return this.call('Logout', request, options);
  }
  changePassword(request: Json, options?: GrpcCallOptions) {
    return this.call('ChangePassword', request, options);
  }
  getUser(request: Json, options?: GrpcCallOptions) {
    return this.call('GetUser', request, options);
  }
  batchGetUsers(request: Json, options?: GrpcCallOptions) {
    return this.call('BatchGetUsers', request, options);
  }

  close(): void {
    this.client.close();
  }

  private call(method: string, request: Json, options: GrpcCallOptions = {}): Promise<Json> {
    const metadata = new grpc.Metadata();
    for (const [key, value] of Object.entries(options.metadata ?? {})) metadata.set(key, value);
    const callOptions: grpc.CallOptions = options.deadlineMs === undefined ? {} : { deadline: Date.now() + options.deadlineMs };
    const fn = this.client[method] as (req: Json, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Json) => void) => void;
    return new Promise((resolve, reject) => {
      fn.call(this.client, request, metadata, callOptions, (error, response) => (error ? reject(error) : resolve(response)));
    });
  }
}

/** grpc.health.v1.Health through grpc-js, as a load balancer or kubelet probe would call it. */
export function grpcHealthClient(target: string): grpc.Client & Record<string, (...args: unknown[]) => unknown> {
  return new loaded.grpc.health.v1.Health(target.replace(/^https?:\/\//, ''), grpc.credentials.createInsecure()) as never;
}

/** Asserts a promise rejects with a grpc-js error and returns it. */
export async function grpcError(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await promise;
  } catch (error) {
    return error as grpc.ServiceError;
  }
  throw new Error('expected the call to fail');
}

export { grpc };
