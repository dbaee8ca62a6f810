/**
 * The example subscriber: `npm run example:subscriber` (from the repository root). It keeps a
 * projection of the users in SQLite (SUBSCRIBER_DB, default data/subscriber.sqlite) from the
 * local stream until Ctrl-C. Logs go to stderr.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { UserProjection } from './projection.js';
import { startSubscriber } from './subscriber.js';

const env = (name: string, fallback: string) => process.env[name] ?? fallback;
const dbPath = env('SUBSCRIBER_DB', 'data/subscriber.sqlite');
mkdirSync(dirname(dbPath), { recursive: true });

const nc = await connect({ servers: env('NATS_URL', 'nats://127.0.0.1:4222').split(','), name: 'example-subscriber' });
const projection = UserProjection.open(dbPath);
const consumer = await startSubscriber({
  jetstream: jetstream(nc),
  projection,
  stream: env('NATS_STREAM', 'IDENTITY'),
  subjectPrefix: env('NATS_SUBJECT_PREFIX', 'identity'),
  durable: env('SUBSCRIBER_DURABLE', 'example-user-projection'),
  log: (line) => process.stderr.write(`${line}\n`),
});
process.stderr.write(`projecting users into ${dbPath}; Ctrl-C to stop\n`);

const shutdown = async () => {
  await consumer.stop();
  process.stderr.write(`stopped; ${projection.users().length} users in the projection\n`);
  projection.close();
  await nc.close();
};
process.once('SIGINT', () => void shutdown());
process.once('SIGTERM', () => void shutdown());
