import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTBOX_CHANNEL, OutboxCommitListener } from '../../src/infrastructure/outbox/outbox-commit-listener.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let db: TestDatabase;
const logger = pino({ level: 'silent' });

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.[Symbol.asyncDispose]();
});

/** stop() within `ms`, or a failure saying it hung (rather than a test that never ends). */
const stopWithin = (listener: OutboxCommitListener, ms: number) =>
  Promise.race([listener.stop().then(() => 'stopped'), sleep(ms).then(() => `stop() still pending after ${ms} ms`)]);

describe('OutboxCommitListener (LISTEN on its own connection)', () => {
  it('wakes the relay once when it starts listening, then on every NOTIFY of a commit', async () => {
    let wakes = 0;
    const listener = new OutboxCommitListener({ connectionString: db.url, onCommit: () => wakes++, logger });
    listener.start();
    try {
      await expect.poll(() => wakes).toBe(1);
      await db.knex.raw(`notify ${OUTBOX_CHANNEL}`);
      await expect.poll(() => wakes).toBe(2);
    } finally {
      expect(await stopWithin(listener, 5_000)).toBe('stopped');
    }
  });

  it('stops at once when stopped while still connecting (pg leaves such a connect pending for ever)', async () => {
    for (let i = 0; i < 10; i++) {
      const listener = new OutboxCommitListener({ connectionString: db.url, onCommit: () => undefined, logger });
      listener.start();
      if (i % 2 === 1) await sleep(i); // catch the connect at different moments
      expect(await stopWithin(listener, 5_000)).toBe('stopped');
    }
  });

  it('stops while it retries an unreachable server', async () => {
    const warnings: string[] = [];
    const retrying = pino({ level: 'warn' }, { write: (line: string) => void warnings.push((JSON.parse(line) as { msg: string }).msg) });
    const listener = new OutboxCommitListener({ connectionString: 'postgres://postgres@127.0.0.1:1/none', onCommit: () => undefined, logger: retrying });
    listener.start();
    // Stopped once it says it is retrying, not after a guess at how long a refused connect takes.
    await expect.poll(() => warnings).toContain('outbox commit listener could not connect; retrying');
    expect(await stopWithin(listener, 5_000)).toBe('stopped');
  });
});
