import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { sleep } from './clock.js';
import type { BenchContext } from './context.js';
import type { BenchDatabase } from './database.js';
import type { BenchNats } from './nats.js';
import getPort from 'get-port';
import type { Scope } from './scope.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
const KEPT_LINES = 40;

interface ServiceOptions {
  readonly database: Pick<BenchDatabase, 'url' | 'keyEncryptionKey'>;
  readonly natsUrl: string;
  readonly bcryptCost: number;
  readonly hashWorkers: number;
  /** Overrides and additions (TOKEN_CACHE_SIZE=0, LOGIN_THROTTLE=off, OUTBOX_POLL_MS, ...). */
  readonly env?: Record<string, string>;
  /** A compiled main.js (bench/lib/build.ts) to run instead of src/main.ts through tsx. */
  readonly compiledEntry?: string;
}

export interface ServiceHandle {
  readonly pid: number;
  /** host:port of the h2c API, as grpc-js wants it. */
  readonly target: string;
  readonly adminUrl: string;
  /** The stream and subject prefix of this instance: random, so runs never see each other's events. */
  readonly stream: string;
  readonly subjectPrefix: string;
  readonly env: Record<string, string>;
  /** Log lines at warn level or above so far (the bench runs the service at LOG_LEVEL=warn). */
  readonly warnings: () => number;
  /** The last lines the process wrote, for error messages. */
  readonly tail: () => string;
  stop(): Promise<void>;
}

const IMAGE_HEAP_OPTIONS = ['--max-old-space-size=96', '--max-semi-space-size=8'];
const IMAGE_V8_POOL = '--v8-pool-size=1';

/**
 * Starts `identity serve` as its own process, as an operator would (node + tsx on the
 * sources), and waits until /readyz answers 200 (database reachable, keys loaded; the API
 * port is bound before the admin port). Its stream is deleted and the process stopped when
 * `scope` closes.
 */
async function startService(options: ServiceOptions, nats: BenchNats, scope: Scope): Promise<ServiceHandle> {
  const tag = randomBytes(4).toString('hex');
  // The service logs at warn level during the bench (info lines cost CPU on every call), so it
  // cannot announce ports picked with PORT=0: the bench picks them.
  const [port, adminPort] = [await getPort({ host: '127.0.0.1' }), await getPort({ host: '127.0.0.1' })];
  const env: Record<string, string> = {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    ADMIN_PORT: String(adminPort),
    MANAGEMENT_PORT: '0',
    LOG_LEVEL: 'warn',
    DATABASE_URL: options.database.url,
    NATS_URL: options.natsUrl,
    NATS_STREAM: `BENCH_${tag}`,
    NATS_SUBJECT_PREFIX: `bench_${tag}`,
    KEY_ENCRYPTION_KEY: options.database.keyEncryptionKey,
    BCRYPT_COST: String(options.bcryptCost),
    HASH_WORKERS: String(options.hashWorkers),
    SHUTDOWN_GRACE_SECONDS: '5',
    // The container image's NODE_OPTIONS (Dockerfile): its heap bounds for the compiled service
    // (under tsx the loader's own memory would not fit in them) and its one V8 platform thread;
    // BENCH_SERVICE_NODE_OPTIONS adds flags (say --cpu-prof --cpu-prof-dir=DIR for a profile).
    NODE_OPTIONS: [...(options.compiledEntry !== undefined ? IMAGE_HEAP_OPTIONS : []), IMAGE_V8_POOL, process.env['BENCH_SERVICE_NODE_OPTIONS'] ?? ''].join(' ').trim(),
    // The image's libuv pool (one thread: see the Dockerfile).
    UV_THREADPOOL_SIZE: '1',
    ...options.env,
  };
  nats.deleteWithScope(env['NATS_STREAM']!, scope);
  // PATH and HOME only from the parent: the service's configuration is exactly `env`.
  const args = options.compiledEntry === undefined ? ['--import', 'tsx', 'src/main.ts', 'serve'] : [options.compiledEntry, 'serve'];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', ...env },
  });
  // once() rejects on an 'error' event (the spawn failed): treat it as an exit.
  const exited = once(child, 'exit').catch((error: unknown) => [null, String(error)]);
  const output = collectOutput(child);
  const stop = () => stopProcess(child, exited);
  scope.defer(`stop service ${child.pid}`, stop);
  await waitReady(`http://127.0.0.1:${adminPort}/readyz`, child, output.tail);
  return {
    pid: child.pid!,
    target: `127.0.0.1:${port}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    stream: env['NATS_STREAM']!,
    subjectPrefix: env['NATS_SUBJECT_PREFIX']!,
    env,
    warnings: output.warnings,
    tail: output.tail,
    stop,
  };
}

function collectOutput(child: ChildProcessWithoutNullStreams) {
  const lines: string[] = [];
  let warnings = 0;
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n').filter(Boolean)) {
      // pino levels: 40 warn, 50 error, 60 fatal.
      if (/"level":\s*[4-6]0/.test(line)) warnings++;
      lines.push(line);
      if (lines.length > KEPT_LINES) lines.shift();
    }
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  return { warnings: () => warnings, tail: () => lines.join('\n') };
}

async function waitReady(url: string, child: ChildProcessWithoutNullStreams, tail: () => string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`identity serve exited (${String(child.exitCode ?? child.signalCode)}) before it was ready:\n${tail()}`);
    }
    const ready = await fetch(url).then(
      async (response) => (await response.text()) !== undefined && response.status === 200,
      () => false,
    );
    if (ready) return;
    await sleep(100);
  }
  throw new Error(`identity serve was not ready within ${START_TIMEOUT_MS / 1000} s:\n${tail()}`);
}

/** SIGTERM (graceful: in-flight calls finish, the relay releases its claims), SIGKILL if it hangs. */
async function stopProcess(child: ChildProcessWithoutNullStreams, exited: Promise<unknown[]>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/** startService with the scenario's defaults (cost, workers, NATS, runtime), logging how long start-up took. */
export async function startScenarioService(
  ctx: Pick<BenchContext, 'natsUrl' | 'bcryptCost' | 'hashWorkers' | 'nats' | 'scope' | 'compiled' | 'compiledService' | 'log'>,
  database: Pick<BenchDatabase, 'url' | 'keyEncryptionKey'>,
  env: Record<string, string> = {},
  { compiled = ctx.compiled }: { readonly compiled?: boolean } = {},
): Promise<ServiceHandle> {
  const compiledEntry = compiled ? await ctx.compiledService() : undefined;
  const started = Date.now();
  const settings = Object.entries(env).map(([name, value]) => `${name}=${value}`).join(' ');
  const options = { database, natsUrl: ctx.natsUrl, bcryptCost: ctx.bcryptCost, hashWorkers: ctx.hashWorkers, env, ...(compiledEntry !== undefined && { compiledEntry }) };
  const service = await startService(options, ctx.nats, ctx.scope);
  ctx.log(`service ${service.pid} (${compiled ? 'compiled' : 'tsx'}) ready in ${((Date.now() - started) / 1000).toFixed(1)} s${settings === '' ? '' : ` (${settings})`}`);
  return {
    ...service,
    // A warning or error logged under load is worth seeing next to the figures it may explain.
    stop: async () => {
      await service.stop();
      if (service.warnings() > 0) ctx.log(`service ${service.pid} logged ${service.warnings()} warning/error line(s); last lines:\n${service.tail()}`);
    },
  };
}
