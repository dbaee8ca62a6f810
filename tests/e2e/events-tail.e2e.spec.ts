import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, inject, it } from 'vitest';
import { UserPasswordChangedSchema } from '../../src/gen/identity/v1/events_pb.js';
import { encodeEvent } from '../../src/infrastructure/outbox/event-codec.js';
import { eventOf, openTestEventStream, type TestEventStream } from '../helpers/event-stream.js';
import { connectClient } from '../helpers/clients.js';
import { createTestDatabase } from '../helpers/database.js';
import { deleteStream } from '../helpers/nats.js';
import { runCli } from '../helpers/process.js';
import { startTestService, testEnv } from '../helpers/service.js';

const NATS_URL = inject('natsUrl');
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A registration exactly as the service encodes it (the real codec). */
function registration() {
  const userId = crypto.randomUUID();
  const encoded = encodeEvent(
    { type: 'identity.v1.UserRegistered', eventId: crypto.randomUUID(), aggregateId: userId, userId, email: 'tail@example.com', firstName: 'Tai', lastName: 'Lee', occurredAt: new Date() },
    'identity-service',
    new Date(),
  );
  return { type: encoded.eventType, payload: encoded.payload, eventId: encoded.eventId, userId };
}

/** `identity events tail …` as its own process; lines of stdout parsed as they come. */
function tail(stream: Pick<TestEventStream, 'name' | 'prefix'>, args: string[]) {
  const env = { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', NATS_URL, NATS_STREAM: stream.name, NATS_SUBJECT_PREFIX: stream.prefix, LOG_LEVEL: 'warn' };
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'events', 'tail', ...args], { cwd: ROOT, env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit');
  return {
    lines: () => stdout.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>),
    stdout: () => stdout,
    stderr: () => stderr,
    /** Ctrl-C, then the exit code and signal. */
    async interrupt() {
      child.kill('SIGINT');
      return (await exited) as [number | null, NodeJS.Signals | null];
    },
    [Symbol.dispose]: () => child.kill('SIGKILL'),
  };
}

describe('identity events tail', () => {
  it('prints a registration published before it started (--from-sequence) as a decoded JSON line, and ends on Ctrl-C', async () => {
    await using stream = await openTestEventStream(NATS_URL);
    const event = registration();
    await stream.publish(event);
    using run = tail(stream, ['--from-sequence', '1']);

    await expect.poll(() => run.lines(), { timeout: 20_000 }).toHaveLength(1);
    expect(run.lines()[0]).toMatchObject({
      seq: 1,
      subject: `${stream.prefix}.user.registered`,
      id: event.eventId,
      type: 'identity.v1.UserRegistered',
      source: 'identity-service',
      event: { eventId: event.eventId, userId: event.userId, email: 'tail@example.com', firstName: 'Tai', lastName: 'Lee' },
    });
    expect(await run.interrupt()).toEqual([0, null]);
  });

  it('prints a registration made through the real service, as its relay published it', async () => {
    await using db = await createTestDatabase();
    const env = testEnv(db, { OUTBOX_RELAY: 'on', OUTBOX_POLL_MS: '100' });
    try {
      await using service = await startTestService(env);
      const { user } = await connectClient(service.url).registerUser({ email: `tail.${Date.now()}@example.com`, password: 'correct horse battery', firstName: 'Real', lastName: 'Service' });
      using run = tail({ name: env['NATS_STREAM']!, prefix: env['NATS_SUBJECT_PREFIX']! }, ['--from-sequence', '1']);

      await expect.poll(() => run.lines(), { timeout: 30_000 }).toHaveLength(1);
      expect(run.lines()[0]).toMatchObject({
        subject: `${env['NATS_SUBJECT_PREFIX']}.user.registered`,
        type: 'identity.v1.UserRegistered',
        event: { userId: user!.id, email: user!.email, firstName: 'Real', lastName: 'Service' },
      });
      expect(await run.interrupt()).toEqual([0, null]);
    } finally {
      await deleteStream(NATS_URL, env['NATS_STREAM']!);
    }
  });

  it('by default prints only what is published after it started, filtered by --subject', async () => {
    await using stream = await openTestEventStream(NATS_URL);
    await stream.publish(registration());
    using run = tail(stream, ['--subject', `${stream.prefix}.user.*`]);
    await expect.poll(() => run.stderr(), { timeout: 20_000 }).toContain('new events only');

    const later = registration();
    await stream.publish(eventOf(UserPasswordChangedSchema, { userId: later.userId }));
    await stream.publish({ type: 'identity.v1.SessionRevoked', payload: new Uint8Array(), subject: 'session.revoked' });
    await stream.publish(later);
    await expect.poll(() => run.lines().map((line) => line['type'])).toEqual(['identity.v1.UserPasswordChanged', 'identity.v1.UserRegistered']);
    expect(await run.interrupt()).toEqual([0, null]);
  });

  it('replays from an RFC 3339 time (--since)', async () => {
    await using stream = await openTestEventStream(NATS_URL);
    await stream.publish(registration());
    await sleep(20);
    const since = new Date();
    const later = registration();
    await stream.publish(later);
    using run = tail(stream, ['--since', since.toISOString()]);

    await expect.poll(() => run.lines().map((line) => line['id']), { timeout: 20_000 }).toEqual([later.eventId]);
    expect(await run.interrupt()).toEqual([0, null]);
  });

  it('refuses --since with --from-sequence, and a time that is not RFC 3339, as usage errors', async () => {
    const env = { NATS_URL };
    const both = await runCli(['events', 'tail', '--since', '2026-12-06T04:00:00Z', '--from-sequence', '3'], env);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/cannot be used with/);
    const badTime = await runCli(['events', 'tail', '--since', 'yesterday'], env);
    expect(badTime.code).toBe(2);
    expect(badTime.stderr).toContain('RFC 3339');
  });

  it('exits 1 with a one-line reason when NATS is unreachable', async () => {
    const result = await runCli(['events', 'tail'], { NATS_URL: 'nats://127.0.0.1:1' });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^identity: /);
    expect(result.stdout).toBe('');
  });
});
