import { mkdirSync, renameSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import { Code } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthCheckResponse_ServingStatus } from '../../src/gen/grpc/health/v1/health_pb.js';
import { UserManagementService } from '../../src/gen/identity/v1/user_management_pb.js';
import { TestPki, type Issued } from '../helpers/certificates.js';
import { connectClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { managementClient, managementPort } from '../helpers/management.js';
import { captureLogs, startTestService, testEnv, type TestService } from '../helpers/service.js';
import { connectError } from '../helpers/sessions.js';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { Health } from '../../src/gen/grpc/health/v1/health_pb.js';

/**
 * Issue 14: who may call the management port (mutual TLS, MANAGEMENT_ALLOWED_CALLERS, the
 * sidecar's x-forwarded-client-cert), TLS on the API port, and certificates replaced on disk
 * picked up without a restart. Certificates are made here with the openssl command line.
 */

const ADMIN_SAN = 'spiffe://cluster.local/ns/ops/sa/admin';
const INTRUDER_SAN = 'spiffe://cluster.local/ns/ops/sa/intruder';
const pki = new TestPki();
let ca: Issued;
let otherCa: Issued;
let certDir: string;
let db: TestDatabase;
let service: TestService;
let proxied: TestService;
const logs = captureLogs();

/** The served certificate lives behind a `..data`-style symlink, as a Kubernetes Secret volume has it. */
function installServerCertificate(version: string): void {
  const target = join(pki.dir, version);
  mkdirSync(target, { recursive: true });
  pki.leaf('tls', ca, 'DNS:localhost,IP:127.0.0.1', target);
  const link = join(pki.dir, `link-${version}`);
  symlinkSync(target, link);
  renameSync(link, join(pki.dir, 'current')); // atomic swap, as the kubelet does it
}

beforeAll(async () => {
  ca = pki.ca('ca');
  otherCa = pki.ca('other-ca');
  certDir = join(pki.dir, 'current');
  installServerCertificate('v1');
  db = await createTestDatabase();
  const files = { cert: join(certDir, 'tls.crt'), key: join(certDir, 'tls.key') };
  const env = testEnv(db, {
      LOG_LEVEL: 'info',
      MANAGEMENT_PORT: String(await managementPort()),
      MANAGEMENT_TLS_CERT_FILE: files.cert,
      MANAGEMENT_TLS_KEY_FILE: files.key,
      MANAGEMENT_TLS_CLIENT_CA_FILE: ca.certFile,
      MANAGEMENT_ALLOWED_CALLERS: `${ADMIN_SAN},ops-console.internal`,
      TLS_CERT_FILE: files.cert,
      TLS_KEY_FILE: files.key,
      TLS_RELOAD_SECONDS: '1',
  });
  service = await startTestService(env, { logDestination: logs.destination });
  // A second replica on the same database (same key encryption key), as behind a mesh: cleartext, the sidecar's header believed.
  const { MANAGEMENT_TLS_CERT_FILE: _c, MANAGEMENT_TLS_KEY_FILE: _k, MANAGEMENT_TLS_CLIENT_CA_FILE: _a, TLS_CERT_FILE: _t, TLS_KEY_FILE: _tk, ...plain } = env;
  proxied = await startTestService(
    { ...plain, MANAGEMENT_PORT: String(await managementPort()), TRUST_PROXY: 'true', MANAGEMENT_ALLOWED_CALLERS: ADMIN_SAN },
    { logDestination: logs.destination },
  );
});

afterAll(async () => {
  await service?.[Symbol.asyncDispose]();
  await proxied?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
  pki[Symbol.dispose]();
});

const managementUrl = () => `https://127.0.0.1:${service.managementPort}`;
const asClient = (client: Issued | undefined, trust: Issued = ca) =>
  managementClient(managementUrl(), 'grpc', { ca: trust.cert, ...(client !== undefined && { cert: client.cert, key: client.key }) });
const auditLines = () => logs.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry['audit'] === true && entry['action'] === 'management');

describe('mutual TLS on the management port', () => {
  it('serves a caller whose certificate carries an allowed URI SAN, and audits it by that SAN', async () => {
    const client = pki.leaf('admin', ca, `URI:${ADMIN_SAN}`);
    expect((await asClient(client).listUsers({})).users).toEqual([]);
    expect(auditLines().at(-1)).toMatchObject({ method: `${UserManagementService.typeName}/ListUsers`, caller: ADMIN_SAN, callerSource: 'certificate', code: 'OK' });
  });

  it('accepts an allowed DNS SAN too', async () => {
    const client = pki.leaf('console', ca, 'DNS:ops-console.internal');
    expect((await asClient(client).listUsers({})).users).toEqual([]);
  });

  it('refuses a valid certificate with an unlisted SAN: PERMISSION_DENIED, audited', async () => {
    const client = pki.leaf('intruder', ca, `URI:${INTRUDER_SAN}`);
    const error = await connectError(asClient(client).listUsers({}));
    expect(error.code).toBe(Code.PermissionDenied);
    expect(error.rawMessage).not.toContain(ADMIN_SAN);
    expect(auditLines().at(-1)).toMatchObject({ caller: INTRUDER_SAN, code: 'PermissionDenied' });
    // Health stays open to any authenticated caller (probes).
    const health = createClient(Health, createGrpcTransport({ baseUrl: managementUrl(), nodeOptions: { ca: ca.cert, cert: client.cert, key: client.key } }));
    expect((await health.check({ service: UserManagementService.typeName })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  });

  it('refuses the handshake without a client certificate, and with one from another CA', async () => {
    const countBefore = auditLines().length;
    // TLS 1.3: the client finishes its side first and learns of the refusal (alert 116,
    // certificate required / 48, unknown CA) as its connection breaks: a transport error, no status.
    expect(TRANSPORT_FAILURES).toContain((await connectError(asClient(undefined).listUsers({}))).code);
    await expect(tlsRefusal(service.managementPort!)).resolves.toMatch(/certificate required|alert number 116/i);
    const foreign = pki.leaf('foreign-admin', otherCa, `URI:${ADMIN_SAN}`);
    expect(TRANSPORT_FAILURES).toContain((await connectError(asClient(foreign).listUsers({}))).code);
    // Accepted, the connection would stay open waiting for the HTTP/2 preface (10 s); it is closed at once.
    await expect(tlsRefusal(service.managementPort!, foreign)).resolves.toMatch(/unknown ca|alert number 48|closed without an error/i);
    // No call reached the service, so none was audited.
    expect(auditLines()).toHaveLength(countBefore);
  });

  it('refuses plaintext HTTP/2 on the TLS port', async () => {
    const countBefore = auditLines().length;
    const plain = managementClient(`http://127.0.0.1:${service.managementPort}`, 'grpc');
    expect(TRANSPORT_FAILURES).toContain((await connectError(plain.listUsers({}))).code);
    expect(auditLines()).toHaveLength(countBefore);
  });
});

describe('x-forwarded-client-cert behind a mesh (TRUST_PROXY=true, no TLS)', () => {
  it('names the caller by the sidecar\'s URI and applies the allowed callers to it', async () => {
    const client = managementClient(proxied.managementUrl!, 'connect');
    const xfcc = (uri: string) => ({ headers: { 'x-forwarded-client-cert': `By=spiffe://cluster.local/ns/identity/sa/identity;Hash=abc;Subject="";URI=${uri}` } });
    expect((await client.listUsers({}, xfcc(ADMIN_SAN))).users).toEqual([]);
    expect(auditLines().at(-1)).toMatchObject({ caller: ADMIN_SAN, callerSource: 'forwarded', code: 'OK' });
    expect((await connectError(client.listUsers({}, xfcc(INTRUDER_SAN)))).code).toBe(Code.PermissionDenied);
    expect((await connectError(client.listUsers({}))).code).toBe(Code.PermissionDenied);
    expect(auditLines().at(-1)).toMatchObject({ caller: '127.0.0.1', callerSource: 'peer' });
  });
});

describe('TLS on the API port, and certificates re-read from disk', () => {
  it('serves the API over HTTP/2 with TLS (ALPN h2) and refuses cleartext there', async () => {
    const apiHttps = `https://127.0.0.1:${service.apiPort}`;
    const client = createClient(
      (await import('../../src/gen/identity/v1/identity_pb.js')).IdentityService,
      createGrpcTransport({ baseUrl: apiHttps, nodeOptions: { ca: ca.cert } }),
    );
    expect((await connectError(client.getUser({ userId: '0b5b3c1e-7f00-4e6f-9a55-3d1c2f4b8a01' }))).code).toBe(Code.NotFound);
    expect(TRANSPORT_FAILURES).toContain((await connectError(connectClient(service.url, 'grpc').getUser({ userId: '0b5b3c1e-7f00-4e6f-9a55-3d1c2f4b8a01' }))).code);
    expect(await alpnOf(service.apiPort)).toBe('h2');
  });

  it('picks up a certificate replaced on disk (symlink swap) on both ports, without a restart', async () => {
    const before = await servedCertificate(service.apiPort);
    const beforeManagement = await servedCertificate(service.managementPort!, pki.leaf('admin-2', ca, `URI:${ADMIN_SAN}`));
    expect(beforeManagement.serialNumber).toBe(before.serialNumber);
    installServerCertificate('v2');
    await expect.poll(async () => (await servedCertificate(service.apiPort)).serialNumber, { timeout: 10_000, interval: 250 }).not.toBe(before.serialNumber);
    const client = pki.leaf('admin-3', ca, `URI:${ADMIN_SAN}`);
    await expect.poll(async () => (await servedCertificate(service.managementPort!, client)).serialNumber, { timeout: 10_000, interval: 250 }).not.toBe(before.serialNumber);
    // The new certificate serves calls.
    expect((await asClient(client).listUsers({})).users).toEqual([]);
  });
});

/** How a client reports a connection broken below HTTP/2 (no grpc-status ever arrived). */
const TRANSPORT_FAILURES = [Code.Unavailable, Code.Internal, Code.Canceled];

/** The error a TLS client meets once the server has refused its certificate (TLS 1.3 reports it after the handshake). */
function tlsRefusal(port: number, client?: Issued): Promise<string> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: ca.cert, ALPNProtocols: ['h2'], ...(client !== undefined && { cert: client.cert, key: client.key }) });
    socket.once('error', (error) => resolve(error.message));
    socket.once('close', () => resolve('closed without an error'));
    socket.resume();
  });
}

function tlsProbe<T>(port: number, read: (socket: ReturnType<typeof tlsConnect>) => T, client?: Issued): Promise<T> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: ca.cert, ALPNProtocols: ['h2'], ...(client !== undefined && { cert: client.cert, key: client.key }) }, () => {
      const value = read(socket);
      socket.destroy();
      resolve(value);
    });
    socket.once('error', reject);
  });
}
const servedCertificate = (port: number, client?: Issued): Promise<PeerCertificate> => tlsProbe(port, (socket) => socket.getPeerCertificate(), client);
const alpnOf = (port: number) => tlsProbe(port, (socket) => socket.alpnProtocol);
