import { fromBinary, type DescMessage } from '@bufbuild/protobuf';
import { createClient, type Client } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import getPort from 'get-port';
import type { SecureClientSessionOptions } from 'node:http2';
import {
  SessionRevokedSchema,
  UserDeletedSchema,
  UserDisabledSchema,
  UserEnabledSchema,
  UserPasswordChangedSchema,
  UserProfileUpdatedSchema,
  UserRegisteredSchema,
} from '../../src/gen/identity/v1/events_pb.js';
import { UserManagementService } from '../../src/gen/identity/v1/user_management_pb.js';
import type { Protocol } from './clients.js';
import { readStream, type StreamMessage } from './nats.js';

/** A free port for MANAGEMENT_PORT (0 turns that port off, so tests name one). */
export const managementPort = () => getPort({ host: '127.0.0.1' });

/** A Connect-ES client of UserManagementService; `tls` for an https:// base URL (client certificate, CA). */
export function managementClient(baseUrl: string, protocol: Protocol = 'grpc', tls?: SecureClientSessionOptions): Client<typeof UserManagementService> {
  const options = { baseUrl, httpVersion: '2' as const, ...(tls !== undefined && { nodeOptions: tls }) };
  const transport =
    protocol === 'grpc' ? createGrpcTransport(options) : protocol === 'grpc-web' ? createGrpcWebTransport(options) : createConnectTransport(options);
  return createClient(UserManagementService, transport);
}

const SCHEMAS: Record<string, DescMessage> = {
  'identity.v1.UserRegistered': UserRegisteredSchema,
  'identity.v1.UserProfileUpdated': UserProfileUpdatedSchema,
  'identity.v1.UserPasswordChanged': UserPasswordChangedSchema,
  'identity.v1.UserDisabled': UserDisabledSchema,
  'identity.v1.UserEnabled': UserEnabledSchema,
  'identity.v1.UserDeleted': UserDeletedSchema,
  'identity.v1.SessionRevoked': SessionRevokedSchema,
};

export interface DecodedEvent {
  readonly type: string;
  readonly subject: string;
  readonly message: StreamMessage;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly body: Record<string, any>;
}

/** Every event of one user on the stream, decoded by its ce-type, in stream order. */
export async function userEvents(natsUrl: string, stream: string, userId: string): Promise<DecodedEvent[]> {
  const messages = await readStream(natsUrl, stream).catch(() => []);
  return messages
    .map((message): DecodedEvent => {
      const type = message.headers['ce-type'] ?? '';
      const schema = SCHEMAS[type];
      if (schema === undefined) throw new Error(`unknown ce-type ${type}`);
      return { type, subject: message.subject, message, body: fromBinary(schema, message.data) };
    })
    .filter((event) => event.body['userId'] === userId);
}
