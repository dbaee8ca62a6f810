import getPort from 'get-port';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as connectTcp } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstream, jetstreamManager, JetStreamApiCodes, JetStreamApiError, type JetStreamManager, type StreamInfo } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Knex } from 'knex';
import { encodeEvent } from '../../src/infrastructure/outbox/event-codec.js';

/**
 * A nats-server of the test's own, for fault tests: a free port and a temp store dir that
 * survive stop() and start(), so a restart finds its streams (and their dedup state) again.
 */
export interface NatsServer extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  readonly running: boolean;
  start(): Promise<void>;
  /** SIGTERM by default; the store dir is kept. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export async function launchNatsServer(): Promise<NatsServer> {
  const port = await getPort({ host: '127.0.0.1' });
  const storeDir = await mkdtemp(join(tmpdir(), 'identity-nats-'));
  let child: ChildProcess | undefined;
  let log = '';
  const server: NatsServer = {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    get running() {
      return child !== undefined;
    },
    async start() {
      if (child !== undefined) return;
      log = '';
      const started = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir], { stdio: ['ignore', 'pipe', 'pipe'] });
      started.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()));
      started.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
      child = started;
      await waitUntil(async () => {
        if (started.exitCode !== null) throw new Error(`nats-server exited (${started.exitCode}): ${log}`);
        return (await canConnect(port)) && log.includes('Server is ready');
      }, 15_000, `nats-server on port ${port} did not start: ${log}`);
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      const running = child;
      if (running === undefined) return;
      child = undefined;
      if (running.exitCode === null && running.signalCode === null) {
        const exited = once(running, 'exit');
        running.kill(signal);
        await exited;
      }
    },
    async [Symbol.asyncDispose]() {
      await server.stop('SIGKILL');
      await rm(storeDir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

/** One message of a stream as a consumer receives it. */
export interface StreamMessage {
  readonly seq: number;
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: Record<string, string>;
}

/** `url` may list several servers, comma-separated, as NATS_URL does. */
export async function withNats<T>(url: string, work: (nc: NatsConnection, jsm: JetStreamManager) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: url.split(',') });
  try {
    return await work(nc, await jetstreamManager(nc));
  } finally {
    await nc.close();
  }
}

/** The stream's info, or undefined when it does not exist. */
export function streamInfo(url: string, stream: string): Promise<StreamInfo | undefined> {
  return withNats(url, async (_nc, jsm) => {
    try {
      return await jsm.streams.info(stream);
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) return undefined;
      throw error;
    }
  });
}

export async function streamMessageCount(url: string, stream: string): Promise<number> {
  return (await streamInfo(url, stream))?.state.messages ?? 0;
}

export function deleteStream(url: string, stream: string): Promise<void> {
  return withNats(url, async (_nc, jsm) => {
    await jsm.streams.delete(stream).catch((error: unknown) => {
      if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)) throw error;
    });
  });
}

/**
 * Every message of the stream, read with an ordered consumer (an ephemeral consumer that
 * checks sequence continuity), with its headers.
 */
export function readStream(url: string, stream: string, timeoutMs = 30_000): Promise<StreamMessage[]> {
  return withNats(url, async (nc, jsm) => {
    const { state } = await jsm.streams.info(stream);
    if (state.messages === 0) return [];
    const consumer = await jetstream(nc).consumers.get(stream);
    const messages = await consumer.consume({ max_messages: 1_000 });
    const timer = setTimeout(() => void messages.close(), timeoutMs);
    const received: StreamMessage[] = [];
    try {
      for await (const message of messages) {
        const headers: Record<string, string> = {};
        for (const key of message.headers?.keys() ?? []) headers[key] = message.headers?.get(key) ?? '';
        received.push({ seq: message.seq, subject: message.subject, data: message.data, headers });
        if (message.seq >= state.last_seq) break;
      }
    } finally {
      clearTimeout(timer);
      await messages.close();
    }
    if (received.length !== state.messages) throw new Error(`read ${received.length} of ${state.messages} messages of ${stream}`);
    return received;
  });
}

/** Waits until the stream holds at least `count` messages, then reads them all. */
export async function waitForMessages(url: string, stream: string, count: number, timeoutMs = 30_000): Promise<StreamMessage[]> {
  await waitUntil(async () => (await streamMessageCount(url, stream)) >= count, timeoutMs, `stream ${stream} did not reach ${count} messages`);
  return readStream(url, stream);
}

/** Polls `check` until it returns true; the last state is in the timeout message. */
export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, message: string | (() => string | Promise<string>)): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    if (Date.now() > deadline) throw new Error(typeof message === 'string' ? message : await message());
    await sleep(50);
  }
}

export interface BacklogOptions {
  readonly eventType?: string;
  /** All rows on this aggregate (default: one aggregate per row). */
  readonly aggregateId?: string;
  readonly source?: string;
}

/**
 * Inserts `count` outbox rows as OutboxWriter stores them (without users behind them), for
 * backlogs far larger than bcrypt lets registrations build. Returns their event ids in id order.
 */
export async function insertOutboxRows(knex: Knex | Knex.Transaction, count: number, options: BacklogOptions = {}): Promise<string[]> {
  const eventIds: string[] = [];
  const CHUNK = 500;
  for (let offset = 0; offset < count; offset += CHUNK) {
    const rows = Array.from({ length: Math.min(CHUNK, count - offset) }, (_, i) => {
      const userId = options.aggregateId ?? randomUUID();
      const encoded = encodeEvent(
        {
          type: 'identity.v1.UserRegistered',
          eventId: randomUUID(),
          aggregateId: userId,
          userId,
          email: `backlog.${offset + i}@example.com`,
          firstName: 'Back',
          lastName: `Log${offset + i}`,
          occurredAt: new Date(),
        },
        options.source ?? 'identity-service',
        new Date(),
      );
      eventIds.push(encoded.eventId);
      return {
        event_id: encoded.eventId,
        event_type: options.eventType ?? encoded.eventType,
        aggregate_id: encoded.aggregateId,
        payload: Buffer.from(encoded.payload),
        headers: encoded.headers,
      };
    });
    await knex('outbox').insert(rows);
  }
  return eventIds;
}

export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTcp({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
