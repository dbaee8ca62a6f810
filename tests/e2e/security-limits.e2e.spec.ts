/**
 * Hostile clients on the API port (issue 19, findings 1, 3 and 6), each reproduction against the
 * compiled service in its own process under the image's heap bounds: idle connections past
 * MAX_CONNECTIONS, a flood of Health/Watch streams, requests whose body never comes, an oversized
 * header list. The process must survive each and keep answering a client connected beforehand.
 * /readyz under a flood (finding 3) runs in-process: it is about database work, not memory.
 */
import http2 from 'node:http2';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { grpc, grpcHealthClient, GrpcIdentityClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildService, IMAGE_NODE_OPTIONS, startServerProcess, type CompiledService, type ServerProcess } from '../helpers/process.js';
import { startTestService, testEnv } from '../helpers/service.js';
import { tcpProxy } from '../helpers/tcp-proxy.js';
import { ApiServer } from '../../src/transport/http/api-server.js';

const MAX_CONNECTIONS = 50;
const MAX_OPEN_STREAMS = 500;
const HEALTH_WATCH_MAX = 100;
const WATCH_LIFETIME_SECONDS = 4;
const REQUEST_TIMEOUT_SECONDS = 2;
const PREFACE_TIMEOUT_SECONDS = 4;
const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** The outcome of one raw HTTP/2 stream. */
interface StreamOutcome {
  readonly status?: number;
  readonly grpcStatus?: number;
  readonly rstCode: number;
  readonly messages: number;
  /** ms from opening to close. */
  readonly lifetimeMs: number;
}

interface RawStream {
  readonly messages: () => number;
  readonly done: Promise<StreamOutcome>;
}

/** A gRPC call on a raw stream, to control exactly what is sent (and what is not). */
function rawCall(session: http2.ClientHttp2Session, path: string, send: (stream: http2.ClientHttp2Stream) => void, extraHeaders: http2.OutgoingHttpHeaders = {}): RawStream {
  const opened = Date.now();
  const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extraHeaders }, { endStream: false });
  let status: number | undefined;
  let grpcStatus: number | undefined;
  let messages = 0;
  stream.on('response', (headers) => {
    status = Number(headers[':status']);
    if (headers['grpc-status'] !== undefined) grpcStatus = Number(headers['grpc-status']);
  });
  stream.on('trailers', (trailers) => (grpcStatus = Number(trailers['grpc-status'])));
  stream.on('data', () => (messages += 1));
  stream.on('error', () => undefined);
  const done = new Promise<StreamOutcome>((resolve) =>
    stream.on('close', () => resolve({ status, grpcStatus, rstCode: stream.rstCode ?? 0, messages, lifetimeMs: Date.now() - opened })),
  );
  send(stream);
  return { messages: () => messages, done };
}

/** An HTTP/2 session that has exchanged SETTINGS; rejects when the server closes it first. */
function openSession(url: string): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(url);
  session.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    session.once('remoteSettings', () => resolve(session));
    session.once('close', () => reject(new Error('the server closed the connection before its SETTINGS')));
  });
}

const EMPTY_MESSAGE = Buffer.from([0, 0, 0, 0, 0]);
/** A gRPC message prefix that promises 100 bytes, which never come. */
const PROMISE_100_BYTES = Buffer.from([0, 0, 0, 0, 100]);

let db: TestDatabase;
let env: Record<string, string>;
let build: CompiledService;
let server: ServerProcess;
let client: GrpcIdentityClient;
let token: string;

/** The client connected before the flood: its calls must keep being answered. */
async function verifyAsEstablishedClient(): Promise<string> {
  const response = await client.verifyToken({ token }, { deadlineMs: 5_000 });
  return String(response['user_id']);
}

async function metric(name: string, adminUrl = server.adminUrl): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? Number.NaN : Number(line.split(' ')[1]);
}

async function refusedConnections(): Promise<number> {
  const text = await (await fetch(`${server.adminUrl}/metrics`)).text();
  return Number(/^api_refused_total\{kind="connection"\} (\d+)$/m.exec(text)?.[1] ?? 0);
}

function expectAlive(): void {
  expect(server.child.exitCode).toBeNull();
  expect(server.child.signalCode).toBeNull();
  expect(server.stderr()).not.toMatch(/heap limit|MaxListenersExceededWarning/);
}

beforeAll(async () => {
  db = await createTestDatabase();
  build = await buildService();
  env = testEnv(db, {
    NODE_OPTIONS: IMAGE_NODE_OPTIONS,
    LOG_LEVEL: 'warn',
    MAX_CONNECTIONS: String(MAX_CONNECTIONS),
    MAX_OPEN_STREAMS: String(MAX_OPEN_STREAMS),
    HEALTH_WATCH_MAX: String(HEALTH_WATCH_MAX),
    HEALTH_WATCH_LIFETIME_SECONDS: String(WATCH_LIFETIME_SECONDS),
    REQUEST_TIMEOUT_SECONDS: String(REQUEST_TIMEOUT_SECONDS),
    PREFACE_TIMEOUT_SECONDS: String(PREFACE_TIMEOUT_SECONDS),
  });
  // The started line (which carries the ports) is an info line.
  server = await startServerProcess({ ...env, LOG_LEVEL: 'info' }, 60_000, build.entry);
  client = new GrpcIdentityClient(server.apiUrl);
  const user = await client.registerUser({ email: 'established@example.com', password: 'correct horse battery', first_name: 'Est', last_name: 'Ablished' });
  token = String((await client.authenticate({ email: 'established@example.com', password: 'correct horse battery' }))['access_token']);
  expect(await verifyAsEstablishedClient()).toBe(user['user']['id']);
}, 120_000);

afterAll(async () => {
  client?.close();
  await server?.[Symbol.asyncDispose]();
  await build?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
});

describe('idle TCP connections that never send a byte', () => {
  it('past MAX_CONNECTIONS are closed as they arrive, the rest after the preface timeout; the established client is served throughout', { timeout: 60_000 }, async () => {
    const flood = 3_000;
    const sockets: Socket[] = [];
    let open = 0;
    for (let i = 0; i < flood; i += 1) {
      const socket = connect(Number(new URL(server.apiUrl).port), '127.0.0.1');
      open += 1;
      socket.on('error', () => undefined);
      socket.on('close', () => (open -= 1));
      // Reading (and dropping) what the server sends is what lets the socket see the server's FIN.
      socket.resume();
      sockets.push(socket);
      // Batches, so that the listen backlog is not what refuses them.
      if (i % 250 === 249) await new Promise((resolve) => setImmediate(resolve));
    }
    try {
      // The server holds at most MAX_CONNECTIONS (the established client has one of them).
      await vi.waitFor(() => expect(open).toBeLessThan(MAX_CONNECTIONS), { timeout: 10_000, interval: 50 });
      expect(open).toBeGreaterThan(0);
      // Refused by Node as they were accepted, and counted.
      expect(await refusedConnections()).toBeGreaterThanOrEqual(flood - MAX_CONNECTIONS);
      expect(await verifyAsEstablishedClient()).not.toBe('');
      // A newcomer is refused while the slots are held (by sockets that have not yet timed out).
      await expect(openSession(server.apiUrl)).rejects.toThrow(/closed the connection/);
      // Then the preface timeout frees every slot, and newcomers are served again.
      await vi.waitFor(() => expect(open).toBe(0), { timeout: (PREFACE_TIMEOUT_SECONDS + 5) * 1000, interval: 100 });
      const newcomer = new GrpcIdentityClient(server.apiUrl);
      try {
        expect((await newcomer.verifyToken({ token }, { deadlineMs: 5_000 }))['user_id']).not.toBe('');
      } finally {
        newcomer.close();
      }
      expectAlive();
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  });
});

describe('10 connections × 100 Health/Watch streams', () => {
  it('holds at most HEALTH_WATCH_MAX, refuses the rest with RESOURCE_EXHAUSTED, ends the held ones after their lifetime; the established client is served', { timeout: 60_000 }, async () => {
    const sessions = await Promise.all(Array.from({ length: 10 }, () => openSession(server.apiUrl)));
    try {
      const streams = sessions.flatMap((session) =>
        Array.from({ length: 100 }, () => rawCall(session, '/grpc.health.v1.Health/Watch', (stream) => stream.end(EMPTY_MESSAGE))),
      );
      const outcomes: StreamOutcome[] = [];
      for (const stream of streams) void stream.done.then((outcome) => outcomes.push(outcome));
      // Every stream beyond the cap is answered at once.
      await vi.waitFor(() => expect(outcomes.length).toBeGreaterThanOrEqual(streams.length - HEALTH_WATCH_MAX), { timeout: 20_000, interval: 100 });
      const held = streams.length - outcomes.length;
      expect(held).toBeLessThanOrEqual(HEALTH_WATCH_MAX);
      expect(held).toBeGreaterThan(0);
      for (const outcome of outcomes) {
        // The Watch cap answers RESOURCE_EXHAUSTED; the server-wide stream cap refuses the stream.
        expect(outcome.grpcStatus === grpc.status.RESOURCE_EXHAUSTED || outcome.rstCode === NGHTTP2_REFUSED_STREAM, JSON.stringify(outcome)).toBe(true);
      }
      expect(await verifyAsEstablishedClient()).not.toBe('');
      // What a real client sees past the cap (refused before Connect builds a call for it).
      const health = grpcHealthClient(server.apiUrl);
      try {
        const call = (health['Watch'] as (req: object) => grpc.ClientReadableStream<unknown>).call(health, { service: '' });
        call.on('error', () => undefined);
        const status = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
        expect(status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
        expect(status.details).toMatch(/too many health watchers/);
      } finally {
        health.close();
      }
      // The held ones end with OK when their lifetime is over, having sent SERVING.
      const all = await Promise.all(streams.map((stream) => stream.done));
      const ended = all.filter((outcome) => outcome.grpcStatus === grpc.status.OK);
      expect(ended).toHaveLength(held);
      for (const outcome of ended) {
        expect(outcome.messages).toBeGreaterThanOrEqual(1);
        expect(outcome.lifetimeMs).toBeGreaterThanOrEqual(WATCH_LIFETIME_SECONDS * 1000 - 500);
        expect(outcome.lifetimeMs).toBeLessThan((WATCH_LIFETIME_SECONDS + 5) * 1000);
      }
      // The subscriptions were released: a new Watch is accepted.
      const again = rawCall(sessions[0]!, '/grpc.health.v1.Health/Watch', (stream) => stream.end(EMPTY_MESSAGE));
      await vi.waitFor(() => expect(again.messages()).toBe(1), { timeout: 5_000 });
      expectAlive();
    } finally {
      for (const session of sessions) session.destroy();
    }
  });
});

describe('25 connections × 100 VerifyToken streams that promise 100 bytes and send nothing more', () => {
  it('are all ended by REQUEST_TIMEOUT_SECONDS (reset) or refused past MAX_OPEN_STREAMS; the process survives and serves the established client', { timeout: 90_000 }, async () => {
    const sessions = await Promise.all(Array.from({ length: 25 }, () => openSession(server.apiUrl)));
    try {
      const streams = sessions.flatMap((session) =>
        Array.from({ length: 100 }, () => rawCall(session, '/identity.v1.IdentityService/VerifyToken', (stream) => stream.write(PROMISE_100_BYTES))),
      );
      const outcomes = await Promise.all(streams.map((stream) => stream.done));
      const reset = outcomes.filter((outcome) => outcome.rstCode === NGHTTP2_CANCEL);
      const refused = outcomes.filter((outcome) => outcome.rstCode === NGHTTP2_REFUSED_STREAM);
      const deadline = outcomes.filter((outcome) => outcome.grpcStatus === grpc.status.DEADLINE_EXCEEDED);
      expect(reset.length + refused.length + deadline.length).toBe(streams.length);
      // Never more open than the server-wide cap, each for no longer than the request timeout.
      expect(reset.length + deadline.length).toBeLessThanOrEqual(MAX_OPEN_STREAMS);
      expect(reset.length + deadline.length).toBeGreaterThan(0);
      for (const outcome of [...reset, ...deadline]) {
        expect(outcome.lifetimeMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_SECONDS * 1000 - 100);
        expect(outcome.lifetimeMs).toBeLessThan((REQUEST_TIMEOUT_SECONDS + 5) * 1000);
      }
      expect(await verifyAsEstablishedClient()).not.toBe('');
      expectAlive();
    } finally {
      for (const session of sessions) session.destroy();
    }
  });
});

describe('a 60 KB header list, sent before the client has acknowledged the server SETTINGS', () => {
  const pad = (bytes: number, fields: number) => Object.fromEntries(Array.from({ length: fields }, (_, i) => [`x-pad-${i}`, 'a'.repeat(Math.floor(bytes / fields))]));

  it.each([
    ['one 60 KB header', 1],
    ['60 headers of 1 KB', 60],
  ])('%s: refused with 431 before any handler runs', async (_what, fields) => {
    // Not waiting for SETTINGS: the request leaves with the preface, as an attacker's would.
    const session = http2.connect(server.apiUrl);
    session.on('error', () => undefined);
    try {
      const call = rawCall(session, '/identity.v1.IdentityService/VerifyToken', (stream) => stream.end(EMPTY_MESSAGE), pad(60_000, fields));
      const outcome = await call.done;
      expect(outcome.status).toBe(431);
      expect(outcome.grpcStatus).toBeUndefined();
    } finally {
      session.destroy();
    }
    expectAlive();
  });

  it('a 12 KB header list (under MAX_HEADER_BYTES) is served', async () => {
    const session = http2.connect(server.apiUrl);
    session.on('error', () => undefined);
    try {
      const call = rawCall(session, '/identity.v1.IdentityService/VerifyToken', (stream) => stream.end(EMPTY_MESSAGE), pad(12_000, 12));
      const outcome = await call.done;
      expect(outcome.status).toBe(200);
      // An empty token: the handler ran and refused it.
      expect(outcome.grpcStatus).toBe(grpc.status.UNAUTHENTICATED);
    } finally {
      session.destroy();
    }
  });
});

describe('a connection idle past IDLE_TIMEOUT_SECONDS with a Watch stream open', () => {
  it('is destroyed with its stream once the grace after close() is over (close() alone let the stream live on)', { timeout: 60_000 }, async () => {
    const instance = await startTestService({ ...testEnv(db), KEY_ENCRYPTION_KEY: env['KEY_ENCRYPTION_KEY']!, IDLE_TIMEOUT_SECONDS: '1' });
    const session = await openSession(instance.url);
    try {
      let closedAt: number | undefined;
      session.on('close', () => (closedAt = Date.now()));
      const opened = Date.now();
      const watcher = rawCall(session, '/grpc.health.v1.Health/Watch', (stream) => stream.end(EMPTY_MESSAGE));
      await vi.waitFor(() => expect(watcher.messages()).toBe(1), { timeout: 5_000 });
      // Idle after 1 s, then the 5 s grace: the Watch (lifetime 120 s) does not keep it open.
      await vi.waitFor(() => expect(closedAt).toBeDefined(), { timeout: 20_000, interval: 100 });
      const outcome = await watcher.done;
      expect(outcome.grpcStatus).toBeUndefined();
      expect(closedAt! - opened).toBeGreaterThanOrEqual(5_500);
      expect(closedAt! - opened).toBeLessThan(15_000);
    } finally {
      session.destroy();
      await instance[Symbol.asyncDispose]();
    }
  });
});

describe('ApiServer stream bounds, with a handler that never answers', () => {
  it('resets a stream whose request never ends at the request timeout, one whose answer never leaves a grace later, and spares a long-lived one', async () => {
    const requestTimeoutMs = 300;
    const answerGraceMs = 300;
    const api = new ApiServer({
      // Reads the request, then answers only on /long, after both bounds have passed.
      handler: ((req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
        req.resume();
        if (req.url === '/long') req.on('end', () => setTimeout(() => res.writeHead(200).end('done'), requestTimeoutMs + answerGraceMs + 400));
      }),
      maxConcurrentStreams: 100,
      maxHeaderBytes: 16_384,
      maxConnections: 10,
      maxOpenStreams: 100,
      prefaceTimeoutMs: 5_000,
      idleTimeoutMs: 60_000,
      requestTimeoutMs,
      answerGraceMs,
      isLongLived: (req) => req.url === '/long',
    });
    const { port } = await api.listen(0, '127.0.0.1');
    const session = await openSession(`http://127.0.0.1:${port}`);
    try {
      const unread = rawCall(session, '/unread', (stream) => stream.write(PROMISE_100_BYTES));
      const unanswered = rawCall(session, '/unanswered', (stream) => stream.end(EMPTY_MESSAGE));
      const long = rawCall(session, '/long', (stream) => stream.end(EMPTY_MESSAGE));
      const [a, b, c] = await Promise.all([unread.done, unanswered.done, long.done]);
      expect(a.rstCode).toBe(NGHTTP2_CANCEL);
      expect(a.lifetimeMs).toBeGreaterThanOrEqual(requestTimeoutMs - 20);
      expect(a.lifetimeMs).toBeLessThan(requestTimeoutMs + answerGraceMs);
      expect(b.rstCode).toBe(NGHTTP2_CANCEL);
      expect(b.lifetimeMs).toBeGreaterThanOrEqual(requestTimeoutMs + answerGraceMs - 20);
      expect(c).toMatchObject({ status: 200, rstCode: 0, messages: 1 });
    } finally {
      session.destroy();
      await api.close(0);
    }
  });
});

describe('/readyz hammered', () => {
  async function hammer(adminUrl: string, calls: number, concurrency: number) {
    const bodies: { status: number; text: string }[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < calls) {
          next += 1;
          const response = await fetch(`${adminUrl}/readyz`);
          bodies.push({ status: response.status, text: await response.text() });
        }
      }),
    );
    return bodies;
  }

  const STATES = ['ok', 'down', 'timeout', 'migrations_pending', 'missing', 'behind', 'draining'];

  it('probes the database at most once a second, up or down, and its body names checks and states only', { timeout: 90_000 }, async () => {
    await using proxy = await tcpProxy(new URL(db.url));
    // The same KEY_ENCRYPTION_KEY as the process that created the signing key in this database.
    const instance = await startTestService({ ...testEnv(db), KEY_ENCRYPTION_KEY: env['KEY_ENCRYPTION_KEY']!, DATABASE_URL: proxy.url(db.url) });
    try {
      for (const phase of ['up', 'down'] as const) {
        if (phase === 'down') {
          await proxy.cut();
          // The cached probe may answer "ok" for up to a second more.
          await vi.waitFor(async () => expect((await fetch(`${instance.adminUrl}/readyz`)).status).toBe(503), { timeout: 10_000, interval: 200 });
        }
        const before = await metric('readiness_probes_total', instance.adminUrl);
        const started = Date.now();
        const bodies = await hammer(instance.adminUrl, 1_500, 32);
        const seconds = (Date.now() - started) / 1000;
        const probes = (await metric('readiness_probes_total', instance.adminUrl)) - before;
        // One per started second, plus the one already running when the burst began.
        expect(probes, `${probes} probes in ${seconds} s`).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
        for (const { status, text } of bodies) {
          expect(status).toBe(phase === 'up' ? 200 : 503);
          const body = JSON.parse(text) as { ready: boolean; checks: Record<string, string> };
          expect(Object.keys(body).sort()).toEqual(['checks', 'ready']);
          expect(body.ready).toBe(phase === 'up');
          for (const state of Object.values(body.checks)) expect(STATES).toContain(state);
          expect(Object.keys(body.checks).every((name) => ['database', 'signing_key', 'outbox_lag', 'draining'].includes(name))).toBe(true);
        }
        if (phase === 'down') {
          const body = JSON.parse(bodies.at(-1)!.text) as { checks: Record<string, string> };
          expect(['down', 'timeout']).toContain(body.checks['database']);
          expect(body.checks['signing_key']).toBe('ok');
          // The cause (ECONNREFUSED, a reset, a timeout in ms) stays out of the answer.
          for (const { text } of bodies) expect(text).not.toMatch(/ECONN|error|refused|reset|\bms\b|\d{4}/i);
        }
      }
    } finally {
      await instance[Symbol.asyncDispose]();
    }
  });
});
