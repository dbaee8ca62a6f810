import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/infrastructure/config/load-config.js';
import { startService, type Service, type ServiceOverrides } from '../../src/app/build-service.js';
import type { TestDatabase } from './database.js';
import { inject } from 'vitest';

/**
 * The environment of a test instance: its own database, ephemeral ports on 127.0.0.1,
 * bcrypt at the lowest accepted cost (speed), its own stream and subjects on the shared NATS
 * (so files never see each other's events), and the relay off unless a test turns it on.
 */
export function testEnv(db: Pick<TestDatabase, 'url'>, extra: Record<string, string> = {}): Record<string, string> {
  const tag = randomBytes(4).toString('hex');
  return {
    NODE_ENV: 'test',
    DATABASE_URL: db.url,
    HOST: '127.0.0.1',
    PORT: '0',
    ADMIN_PORT: '0',
    // Off: 0 is "off" for this port, not "any free port"; tests of it pick a free one (managementPort()).
    MANAGEMENT_PORT: '0',
    LOG_LEVEL: 'silent',
    BCRYPT_COST: '10',
    HASH_WORKERS: '1',
    KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    NATS_URL: inject('natsUrl'),
    NATS_STREAM: `TEST_${tag}`,
    NATS_SUBJECT_PREFIX: `test_${tag}`,
    OUTBOX_RELAY: 'off',
    SHUTDOWN_GRACE_SECONDS: '5',
    ...extra,
  };
}

export interface TestService extends Service {
  readonly apiPort: number;
  readonly adminPort: number;
  /** Undefined when MANAGEMENT_PORT=0 (off). */
  readonly managementPort: number | undefined;
  /** http://127.0.0.1:<api port> */
  readonly url: string;
  /** http://127.0.0.1:<admin port> */
  readonly adminUrl: string;
  /** http(s)://127.0.0.1:<management port>, when MANAGEMENT_PORT is not 0. */
  readonly managementUrl: string | undefined;
}

export async function startTestService(env: Record<string, string>, overrides: ServiceOverrides = {}): Promise<TestService> {
  const service = await startService(loadConfig(env), overrides);
  return Object.assign(service, {
    url: `http://127.0.0.1:${service.apiPort}`,
    adminUrl: `http://127.0.0.1:${service.adminPort}`,
    managementUrl: service.managementPort === undefined ? undefined : `${env['MANAGEMENT_TLS_CERT_FILE'] === undefined ? 'http' : 'https'}://127.0.0.1:${service.managementPort}`,
  });
}

/** A log sink that keeps every line, to assert on what was (and was not) logged. */
export function captureLogs(): { destination: Writable; lines: string[]; text: () => string } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      callback();
    },
  });
  return { destination, lines, text: () => lines.join('\n') };
}
