import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const PROTO_ROOT = fileURLToPath(new URL('../../../proto', import.meta.url));
const CALL_DEADLINE_MS = 30_000;

const definition = protoLoader.loadSync('identity/v1/identity.proto', { includeDirs: [PROTO_ROOT], keepCase: true });
const IdentityService = (grpc.loadPackageDefinition(definition) as unknown as { identity: { v1: { IdentityService: grpc.ServiceClientConstructor } } })
  .identity.v1.IdentityService;

export interface CallOutcome {
  readonly code: grpc.status;
  readonly details?: string;
}

type Unary = (request: object, metadata: grpc.Metadata, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null) => void) => void;

/**
 * The client other teams use: grpc-js with proto-loader, over h2c. Each instance is its own
 * HTTP/2 connection (a local subchannel pool), so a job can spread calls over several.
 */
export class IdentityClient {
  private readonly client: grpc.Client & Record<string, Unary>;
  private readonly metadata = new grpc.Metadata();

  constructor(target: string) {
    this.client = new IdentityService(target, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as never;
  }

  /** Resolves with the call's status; never rejects. */
  call(rpc: string, request: object): Promise<CallOutcome> {
    const method = this.client[rpc]!;
    return new Promise((resolve) => {
      method.call(this.client, request, this.metadata, { deadline: Date.now() + CALL_DEADLINE_MS }, (error) =>
        resolve(error === null ? { code: grpc.status.OK } : { code: error.code, details: error.details }),
      );
    });
  }

  close(): void {
    this.client.close();
  }
}

export const statusName = (code: grpc.status): string => grpc.status[code] ?? `CODE_${code}`;
