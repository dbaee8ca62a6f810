/**
 * The admin port as Prometheus, a kubelet and an operator use it (issue 7): the
 * go-grpc-prometheus series with exact counts after known calls, the other series by name,
 * /healthz and /readyz, and the x-request-id that ties a caller's request to its log line.
 */
import { Code, ConnectError } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, grpc, grpcError, grpcHealthClient, GrpcIdentityClient, type Protocol } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { captureLogs, startTestService, testEnv, type TestService } from '../helpers/service.js';

const IDENTITY = 'identity.v1.IdentityService';
const PASSWORD = 'correct horse battery';

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** The Prometheus text format, samples only (HELP and TYPE lines are kept apart). */
function parseMetrics(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return { samples, types };
}

/** Samples of `name` whose labels include `labels`. */
const select = (samples: readonly Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value));

/** The one sample of `name` with exactly these labels, or 0 when the series does not exist (yet). */
function valueOf(samples: readonly Sample[], name: string, labels: Record<string, string>): number {
  const found = samples.filter((s) => s.name === name && Object.keys(s.labels).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  expect(found.length).toBeLessThanOrEqual(1);
  return found[0]?.value ?? 0;
}

let db: TestDatabase;
let service: TestService;
let grpcClient: GrpcIdentityClient;
const logs = captureLogs();

beforeAll(async () => {
  db = await createTestDatabase();
  service = await startTestService(testEnv(db, { LOG_LEVEL: 'info' }), { logDestination: logs.destination });
  grpcClient = new GrpcIdentityClient(service.url);
});

afterAll(async () => {
  grpcClient?.close();
  await service?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
});

async function scrape(): Promise<ReturnType<typeof parseMetrics> & { contentType: string | null }> {
  const response = await fetch(`${service.adminUrl}/metrics`);
  expect(response.status).toBe(200);
  return { ...parseMetrics(await response.text()), contentType: response.headers.get('content-type') };
}

function healthCheck(client: ReturnType<typeof grpcHealthClient>, service: string, metadata = new grpc.Metadata()) {
  return new Promise<{ status: string; headers: grpc.Metadata }>((resolve, reject) => {
    let headers = new grpc.Metadata();
    const call = (client['Check'] as (req: object, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r: { status: string }) => void) => grpc.ClientUnaryCall).call(
      client,
      { service },
      metadata,
      (error, response) => (error ? reject(error) : resolve({ status: response.status, headers })),
    );
    call.on('metadata', (received: grpc.Metadata) => (headers = received));
  });
}

describe('/metrics after a known set of calls', () => {
  let metrics: Awaited<ReturnType<typeof scrape>>;
  const unary = (method: string) => ({ grpc_type: 'unary', grpc_service: IDENTITY, grpc_method: method });

  beforeAll(async () => {
    const suffix = Date.now();
    const ann = { email: `ann.${suffix}@example.com`, password: PASSWORD, first_name: 'Ann', last_name: 'Lee' };
    await grpcClient.registerUser(ann);
    await grpcClient.registerUser({ ...ann, email: `bob.${suffix}@example.com`, first_name: 'Bob' });
    await grpcError(grpcClient.registerUser({ ...ann, email: 'not-an-email' }));
    await grpcError(grpcClient.registerUser(ann));

    const { access_token: token } = await grpcClient.authenticate({ email: ann.email, password: PASSWORD });
    await grpcError(grpcClient.authenticate({ email: ann.email, password: 'wrong password!' }));
    await grpcError(grpcClient.authenticate({ email: `nobody.${suffix}@example.com`, password: PASSWORD }));

    await grpcClient.verifyToken({ token });
    await grpcError(grpcClient.verifyToken({ token: 'not.a.token' }));
    await grpcError(grpcClient.verifyToken({ token: `${String(token).slice(0, -4)}AAAA` }));
    // The Connect protocol counts in the same series.
    await connectClient(service.url, 'connect')
      .verifyToken({ token: 'garbage' })
      .catch((error: unknown) => expect(ConnectError.from(error).code).toBe(Code.Unauthenticated));

    const health = grpcHealthClient(service.url);
    try {
      await healthCheck(health, '');
      await grpcError(healthCheck(health, 'no.such.Service'));
    } finally {
      health.close();
    }
    metrics = await scrape();
  });

  it('is Prometheus text', () => {
    expect(metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it('counts grpc_server_started_total per method, labelled as go-grpc-prometheus does', () => {
    expect(metrics.types.get('grpc_server_started_total')).toBe('counter');
    expect(valueOf(metrics.samples, 'grpc_server_started_total', unary('RegisterUser'))).toBe(4);
    expect(valueOf(metrics.samples, 'grpc_server_started_total', unary('Authenticate'))).toBe(3);
    expect(valueOf(metrics.samples, 'grpc_server_started_total', unary('VerifyToken'))).toBe(4);
    expect(valueOf(metrics.samples, 'grpc_server_started_total', { grpc_type: 'unary', grpc_service: 'grpc.health.v1.Health', grpc_method: 'Check' })).toBe(2);
  });

  it('counts grpc_server_handled_total per method and code, with Go code names', () => {
    expect(metrics.types.get('grpc_server_handled_total')).toBe('counter');
    const handled = (method: string, code: string) => valueOf(metrics.samples, 'grpc_server_handled_total', { ...unary(method), grpc_code: code });
    expect(handled('RegisterUser', 'OK')).toBe(2);
    expect(handled('RegisterUser', 'InvalidArgument')).toBe(1);
    expect(handled('RegisterUser', 'AlreadyExists')).toBe(1);
    expect(handled('Authenticate', 'OK')).toBe(1);
    expect(handled('Authenticate', 'Unauthenticated')).toBe(2);
    expect(handled('VerifyToken', 'OK')).toBe(1);
    expect(handled('VerifyToken', 'Unauthenticated')).toBe(3);
    const health = { grpc_type: 'unary', grpc_service: 'grpc.health.v1.Health', grpc_method: 'Check' };
    expect(valueOf(metrics.samples, 'grpc_server_handled_total', { ...health, grpc_code: 'OK' })).toBe(1);
    expect(valueOf(metrics.samples, 'grpc_server_handled_total', { ...health, grpc_code: 'NotFound' })).toBe(1);
    // Every code is spelled as Go's codes.Code.String().
    const codes = new Set(select(metrics.samples, 'grpc_server_handled_total').map((s) => s.labels['grpc_code']));
    expect([...codes].sort()).toEqual(['AlreadyExists', 'InvalidArgument', 'NotFound', 'OK', 'Unauthenticated']);
    // Handled equals started for each finished method.
    for (const method of ['RegisterUser', 'Authenticate', 'VerifyToken']) {
      const total = select(metrics.samples, 'grpc_server_handled_total', unary(method)).reduce((sum, s) => sum + s.value, 0);
      expect(total).toBe(valueOf(metrics.samples, 'grpc_server_started_total', unary(method)));
    }
  });

  it('has a grpc_server_handling_seconds histogram per method, with cumulative buckets', () => {
    expect(metrics.types.get('grpc_server_handling_seconds')).toBe('histogram');
    for (const [method, count] of [['RegisterUser', 4], ['Authenticate', 3], ['VerifyToken', 4]] as const) {
      expect(valueOf(metrics.samples, 'grpc_server_handling_seconds_count', unary(method))).toBe(count);
      expect(valueOf(metrics.samples, 'grpc_server_handling_seconds_sum', unary(method))).toBeGreaterThan(0);
      const buckets = select(metrics.samples, 'grpc_server_handling_seconds_bucket', unary(method));
      expect(buckets.every((b) => Object.keys(b.labels).sort().join() === 'grpc_method,grpc_service,grpc_type,le')).toBe(true);
      const values = buckets.map((b) => b.value);
      expect(values).toEqual([...values].sort((a, b) => a - b));
      expect(buckets.find((b) => b.labels['le'] === '+Inf')?.value).toBe(count);
    }
    // No grpc_code label on the histogram, as in go-grpc-prometheus.
    expect(select(metrics.samples, 'grpc_server_handling_seconds_count').every((s) => !('grpc_code' in s.labels))).toBe(true);
  });

  it('has the process and Node.js defaults', () => {
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'process_open_fds', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_version_info']) {
      expect(select(metrics.samples, name).length, name).toBeGreaterThan(0);
    }
    expect(metrics.types.get('nodejs_gc_duration_seconds')).toBe('histogram');
  });

  it('has the database pool gauges', () => {
    expect(metrics.types.get('db_pool_connections_in_use')).toBe('gauge');
    expect(metrics.types.get('db_pool_acquires_waiting')).toBe('gauge');
    expect(valueOf(metrics.samples, 'db_pool_connections_in_use', {})).toBeGreaterThanOrEqual(0);
    expect(valueOf(metrics.samples, 'db_pool_acquires_waiting', {})).toBe(0);
  });

  it('has the bcrypt queue depth and durations by operation', () => {
    expect(metrics.types.get('bcrypt_queue_depth')).toBe('gauge');
    expect(valueOf(metrics.samples, 'bcrypt_queue_depth', {})).toBe(0);
    expect(metrics.types.get('bcrypt_duration_seconds')).toBe('histogram');
    // Two registrations hash (a taken email is refused before hashing); three logins compare.
    expect(valueOf(metrics.samples, 'bcrypt_duration_seconds_count', { operation: 'hash' })).toBe(2);
    expect(valueOf(metrics.samples, 'bcrypt_duration_seconds_count', { operation: 'compare' })).toBe(3);
    expect(metrics.types.get('bcrypt_rejected_total')).toBe('counter');
  });

  it('has the outbox metrics, reading the table when scraped', () => {
    for (const name of ['outbox_published_total', 'outbox_publish_errors_total', 'outbox_dead_letters_total']) expect(metrics.types.get(name), name).toBe('counter');
    expect(metrics.types.get('outbox_commit_to_ack_seconds')).toBe('histogram');
    // The relay is off in this file: both registrations wait in the outbox.
    expect(valueOf(metrics.samples, 'outbox_pending', {})).toBe(2);
    expect(valueOf(metrics.samples, 'outbox_oldest_pending_age_seconds', {})).toBeGreaterThanOrEqual(0);
  });

  it('counts token verify failures by reason', () => {
    expect(metrics.types.get('token_verify_failures_total')).toBe('counter');
    const failures = select(metrics.samples, 'token_verify_failures_total');
    expect(failures.every((s) => typeof s.labels['reason'] === 'string' && s.labels['reason'] !== '')).toBe(true);
    expect(failures.reduce((sum, s) => sum + s.value, 0)).toBe(3);
    expect(metrics.types.get('login_throttled_total')).toBe('counter');
  });

  it('counts streaming calls with their type, once they end', async () => {
    const health = grpcHealthClient(service.url);
    try {
      const call = (health['Watch'] as (req: object) => grpc.ClientReadableStream<unknown>).call(health, { service: '' });
      call.on('error', () => undefined);
      await new Promise((resolve) => call.once('data', resolve));
      const watch = { grpc_type: 'server_stream', grpc_service: 'grpc.health.v1.Health', grpc_method: 'Watch' };
      const during = (await scrape()).samples;
      expect(valueOf(during, 'grpc_server_started_total', watch)).toBe(1);
      expect(select(during, 'grpc_server_handled_total', watch)).toEqual([]);
      call.cancel();
      await new Promise((resolve) => call.once('status', resolve));
      await expect.poll(async () => valueOf((await scrape()).samples, 'grpc_server_handled_total', { ...watch, grpc_code: 'Canceled' })).toBe(1);
    } finally {
      health.close();
    }
  });
});

describe('the probes', () => {
  it('/healthz answers 200 while the process runs', async () => {
    const response = await fetch(`${service.adminUrl}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('/readyz answers 200 with every check ok when ready', async () => {
    const response = await fetch(`${service.adminUrl}/readyz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ready: true, checks: { database: 'ok', signing_key: 'ok' } });
  });

  it('answers HEAD, refuses other methods with 405 and unknown paths with 404', async () => {
    const head = await fetch(`${service.adminUrl}/healthz`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const post = await fetch(`${service.adminUrl}/metrics`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect((await fetch(`${service.adminUrl}/nope`)).status).toBe(404);
  });
});

describe('x-request-id', () => {
  const rpcLine = (requestId: string) =>
    logs.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['msg'] === 'rpc' && line['requestId'] === requestId);

  it.each<Protocol>(['connect', 'grpc', 'grpc-web'])('is echoed in the response headers and carried by the RPC log line (%s)', async (protocol) => {
    const requestId = `ops-${protocol}-${Date.now()}`;
    let echoed: string | null = null;
    const client = connectClient(service.url, protocol);
    const email = `rid.${protocol}.${Date.now()}@example.com`;
    await client.registerUser({ email, password: PASSWORD, firstName: 'Req', lastName: 'Id' }, { headers: { 'x-request-id': requestId }, onHeader: (headers) => (echoed = headers.get('x-request-id')) });
    expect(echoed).toBe(requestId);

    const [line] = rpcLine(requestId);
    expect(line).toMatchObject({ level: 30, requestId, method: `${IDENTITY}/RegisterUser`, code: 'OK', client: '127.0.0.1' });
    expect(typeof line!['durationMs']).toBe('number');
    expect(line!['time']).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(rpcLine(requestId)).toHaveLength(1);
    expect(logs.text()).not.toContain(PASSWORD);
  });

  it.each<Protocol>(['connect', 'grpc', 'grpc-web'])('is echoed on a failed call as well (%s)', async (protocol) => {
    const requestId = `ops-fail-${protocol}-${Date.now()}`;
    const client = connectClient(service.url, protocol);
    const error = await client.verifyToken({ token: 'not.a.token' }, { headers: { 'x-request-id': requestId } }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(error?.code).toBe(Code.Unauthenticated);
    expect(error?.metadata.get('x-request-id')).toBe(requestId);
    expect(rpcLine(requestId)).toMatchObject([{ requestId, method: `${IDENTITY}/VerifyToken`, code: 'Unauthenticated' }]);
  });

  it.each<Protocol>(['connect', 'grpc', 'grpc-web'])('is not echoed on a successful VerifyToken, which writes no line at info (%s)', async (protocol) => {
    const requestId = `ops-quiet-${protocol}-${Date.now()}`;
    const client = connectClient(service.url, protocol);
    const email = `quiet.${protocol}.${Date.now()}@example.com`;
    await client.registerUser({ email, password: PASSWORD, firstName: 'Quiet', lastName: 'Id' });
    const { accessToken } = await client.authenticate({ email, password: PASSWORD });
    // Three times: the first two verify the signature (a token is remembered on its second), the third is answered from the cache at once.
    for (let i = 0; i < 3; i++) {
      let echoed: string | null = 'unset';
      const verified = await client.verifyToken({ token: accessToken }, { headers: { 'x-request-id': requestId }, onHeader: (headers) => (echoed = headers.get('x-request-id')) });
      expect(verified.userId).not.toBe('');
      expect(echoed).toBeNull();
    }
    expect(rpcLine(requestId)).toEqual([]);
  });

  it('is echoed to grpc-js in the response metadata', async () => {
    const health = grpcHealthClient(service.url);
    try {
      const metadata = new grpc.Metadata();
      metadata.set('x-request-id', 'ops-grpc-js-1');
      const { status, headers } = await healthCheck(health, IDENTITY, metadata);
      expect(status).toBe('SERVING');
      expect(headers.get('x-request-id')).toEqual(['ops-grpc-js-1']);
      expect(rpcLine('ops-grpc-js-1')).toMatchObject([{ method: 'grpc.health.v1.Health/Check', code: 'OK' }]);
    } finally {
      health.close();
    }
  });

  it.each([
    ['none', undefined],
    ['one with spaces and quotes', 'has spaces and "quotes"'],
    ['one over 128 characters', 'x'.repeat(129)],
  ])('is generated when the caller sends %s', async (_what, given) => {
    let echoed: string | null = null;
    const { user } = await connectClient(service.url).registerUser(
      { email: `gen.${Date.now()}.${Math.random()}@example.com`, password: PASSWORD, firstName: 'Gen', lastName: 'Id' },
      { headers: given === undefined ? {} : { 'x-request-id': given }, onHeader: (headers) => (echoed = headers.get('x-request-id')) },
    );
    expect(user).toBeDefined();
    expect(echoed).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(rpcLine(echoed!)).toMatchObject([{ method: `${IDENTITY}/RegisterUser`, code: 'OK' }]);
  });
});

describe('a call the caller abandons', () => {
  const register = { grpc_type: 'unary', grpc_service: IDENTITY, grpc_method: 'RegisterUser' };
  const handled = async () => {
    const samples = (await scrape()).samples;
    const count = (grpc_code: string) => valueOf(samples, 'grpc_server_handled_total', { ...register, grpc_code });
    return { ended: count('Canceled') + count('DeadlineExceeded'), internal: count('Internal') };
  };
  const errorLines = () => logs.lines.map((line) => JSON.parse(line) as { level: number }).filter((line) => line.level >= 50);

  // bcrypt keeps each call busy for tens of milliseconds, so the caller gives up while it runs.
  it.each<[Protocol, string]>([
    ['grpc', 'an abort signal'],
    ['connect', 'an abort signal'],
    ['grpc', 'its own deadline'],
    ['connect', 'its own deadline'],
  ])('is counted as Canceled or DeadlineExceeded and logged as a plain rpc line, never as Internal (%s, %s)', async (protocol, how) => {
    const before = await handled();
    const abort = new AbortController();
    const call = connectClient(service.url, protocol).registerUser(
      { email: `gone.${protocol}.${Date.now()}@example.com`, password: PASSWORD, firstName: 'Gone', lastName: 'Away' },
      how === 'an abort signal' ? { signal: abort.signal } : { timeoutMs: 10 },
    );
    setTimeout(() => abort.abort(), 10);
    await expect(call).rejects.toMatchObject({ code: how === 'an abort signal' ? Code.Canceled : Code.DeadlineExceeded });
    await expect.poll(async () => (await handled()).ended).toBe(before.ended + 1);
    expect((await handled()).internal).toBe(before.internal);
    expect(errorLines()).toEqual([]);
  });
});
