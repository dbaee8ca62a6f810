/**
 * deploy/observability against a real Prometheus (issue 17): the Debian `prometheus` package's
 * server scrapes the service's admin port every second while a short load runs, then every
 * dashboard panel query and every alert expression goes through Prometheus's HTTP API, as Grafana
 * and the rule manager would send them. A query that does not parse, names a series the service
 * does not export or groups by a label it does not carry shows up here as an error or an empty panel.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import getPort from 'get-port';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { parse } from 'yaml';
import { GrpcIdentityClient, grpcError } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { EnvoyAuthzClient } from '../helpers/envoy.js';
import { deleteStream, insertOutboxRows } from '../helpers/nats.js';
import { startTestService, testEnv, type TestService } from '../helpers/service.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const OBSERVABILITY = path.join(ROOT, 'deploy/observability');
const RULES = path.join(OBSERVABILITY, 'alerts.yaml');
const DASHBOARD = path.join(OBSERVABILITY, 'grafana-dashboard.json');
/** The scrape job's name the alert rules expect (deploy/README.md). */
const JOB = 'identity';
const PASSWORD = 'correct horse battery';
const MAX_CONNECTIONS = 3;
const INSTALL_HINT = 'prometheus/promtool not found: apt-get install -y --no-install-recommends prometheus (Debian; .ci/run does it)';

const run = promisify(execFile);

interface Target {
  readonly panel: string;
  /** The panel's title and the query's place in it. */
  readonly name: string;
  readonly expr: string;
}
interface Panel {
  readonly type: string;
  readonly title: string;
  readonly targets?: { expr: string }[];
}
interface QueryResult {
  readonly status: string;
  readonly error?: string;
  readonly data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels: Panel[]; templating: { list: { name: string; allValue?: string }[] } };
const rules = (parse(await readFile(RULES, 'utf8')) as { groups: { rules: { alert?: string; expr: string }[] }[] }).groups.flatMap((g) => g.rules);

/**
 * A panel's query as Grafana sends it with "All" selected: template variables become their
 * allValue, and $__rate_interval 5 m (Grafana sends at least four scrape intervals, 4 s here;
 * 5 m keeps the whole short load inside every window however long the assertions take).
 */
function asGrafanaSends(expr: string): string {
  let query = expr.replaceAll('$__rate_interval', '5m');
  for (const variable of dashboard.templating.list) {
    if (variable.allValue !== undefined) query = query.replaceAll(`$${variable.name}`, variable.allValue);
  }
  expect(query, 'every variable of the query is a template variable of the dashboard').not.toMatch(/\$/);
  return query;
}

const targets: Target[] = dashboard.panels.flatMap((panel) =>
  (panel.targets ?? []).map((t, i) => ({ panel: panel.title, name: `${panel.title} #${i + 1}`, expr: asGrafanaSends(t.expr) })),
);

let db: TestDatabase;
let service: TestService;
let client: GrpcIdentityClient;
let prometheus: ChildProcess | undefined;
let prometheusUrl: string;
let workDir: string;
let stream: string;

function installed(binary: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${binary}`]).status === 0;
}

async function query(expr: string): Promise<QueryResult> {
  const response = await fetch(`${prometheusUrl}/api/v1/query?${new URLSearchParams({ query: expr })}`);
  return (await response.json()) as QueryResult;
}

beforeAll(async () => {
  if (!installed('prometheus') || !installed('promtool')) throw new Error(INSTALL_HINT);
  db = await createTestDatabase();
  // The relay on, with a single attempt per event so that a poison event is dead-lettered at once.
  // MAX_CONNECTIONS small enough for the load to go past it once.
  const env = testEnv(db, { OUTBOX_RELAY: 'on', OUTBOX_POLL_MS: '50', OUTBOX_MAX_ATTEMPTS: '1', KEY_ROTATION_DAYS: '30', MAX_CONNECTIONS: String(MAX_CONNECTIONS) });
  stream = env['NATS_STREAM']!;
  service = await startTestService(env);
  client = new GrpcIdentityClient(service.url);

  workDir = await mkdtemp(path.join(tmpdir(), 'identity-prometheus-'));
  const port = await getPort({ host: '127.0.0.1' });
  prometheusUrl = `http://127.0.0.1:${port}`;
  const config = {
    global: { scrape_interval: '1s', evaluation_interval: '1s' },
    rule_files: [RULES],
    scrape_configs: [{ job_name: JOB, static_configs: [{ targets: [`127.0.0.1:${service.adminPort}`] }] }],
  };
  await writeFile(path.join(workDir, 'prometheus.yml'), JSON.stringify(config));
  const log: string[] = [];
  prometheus = spawn(
    'prometheus',
    [`--config.file=${path.join(workDir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(workDir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  prometheus.stderr!.on('data', (chunk: Buffer) => log.push(chunk.toString()));
  await vi.waitFor(
    async () => {
      if (prometheus?.exitCode !== null) throw new Error(`prometheus exited: ${log.join('').slice(-2_000)}`);
      expect((await fetch(`${prometheusUrl}/-/ready`)).status).toBe(200);
    },
    { timeout: 30_000, interval: 200 },
  );

  // A scrape before the load, so that what the load counts shows as increases (rates), not as starting values.
  await vi.waitFor(
    async () => {
      const up = await query(`up{job="${JOB}"}`);
      expect(up.data?.result.map((s) => s.value[1])).toEqual(['1']);
    },
    { timeout: 30_000, interval: 200 },
  );
  await driveLoad();
});

afterAll(async () => {
  client?.close();
  if (prometheus !== undefined && prometheus.exitCode === null) {
    const exited = new Promise((resolve) => prometheus!.once('exit', resolve));
    prometheus.kill('SIGTERM');
    await exited;
  }
  await service?.[Symbol.asyncDispose]();
  if (stream !== undefined) await deleteStream(inject('natsUrl'), stream);
  await db?.[Symbol.asyncDispose]();
  if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
});

/** Some of every call, successes and failures, and one event that fails for good. */
async function driveLoad(): Promise<void> {
  const emails = ['ann', 'bob', 'cy'].map((name) => `${name}-${Date.now()}@example.com`);
  for (const email of emails) await client.registerUser({ email, password: PASSWORD, first_name: 'A', last_name: 'B' });
  expect((await grpcError(client.registerUser({ email: emails[0], password: PASSWORD, first_name: 'A', last_name: 'B' }))).code).toBe(6); // ALREADY_EXISTS
  expect((await grpcError(client.registerUser({ email: 'not an email', password: PASSWORD, first_name: 'A', last_name: 'B' }))).code).toBe(3); // INVALID_ARGUMENT
  const { access_token: token, refresh_token: refreshToken } = await client.authenticate({ email: emails[0], password: PASSWORD });
  expect((await grpcError(client.authenticate({ email: emails[1], password: 'wrong password!' }))).code).toBe(16); // UNAUTHENTICATED
  for (let i = 0; i < 50; i++) await client.verifyToken({ token });
  for (let i = 0; i < 5; i++) expect((await grpcError(client.verifyToken({ token: 'not-a-jwt' }))).code).toBe(16);
  // A sidecar's ext_authz Checks: one allowed, one without a token (denied, reason "missing").
  const envoy = new EnvoyAuthzClient(service.url);
  try {
    expect((await envoy.checkAuthorization(`Bearer ${token}`)).status?.code).toBe(0);
    expect((await envoy.checkAuthorization(undefined)).status?.code).toBe(16);
  } finally {
    envoy.close();
  }
  // A session rotated once, then ended (its access token is refused from now on): a revocation every replica applies (here, the one).
  const rotated = await client.refreshToken({ refresh_token: refreshToken });
  await client.logout({ refresh_token: rotated['refresh_token'] });
  await insertOutboxRows(db.knex, 1, { eventType: 'identity.v1.NoSuchEvent' });
  await connectPastTheLimit();
}

/** Beside the client's connection, as many more as MAX_CONNECTIONS allows and one more, which the server drops. */
async function connectPastTheLimit(): Promise<void> {
  const sockets = Array.from({ length: MAX_CONNECTIONS }, () => net.connect(service.apiPort, '127.0.0.1'));
  try {
    const closed = sockets.map((socket) => new Promise<void>((resolve) => socket.once('close', () => resolve())));
    await Promise.any(closed);
  } finally {
    for (const socket of sockets) socket.destroy();
  }
}

describe('deploy/observability/alerts.yaml', () => {
  it('passes promtool check rules and its own promtool unit tests', async () => {
    const check = await run('promtool', ['check', 'rules', RULES]);
    expect(check.stdout).toContain(`SUCCESS: ${rules.length} rules found`);
    const tests = await run('promtool', ['test', 'rules', 'alerts.test.yaml'], { cwd: OBSERVABILITY });
    expect(tests.stdout).toContain('SUCCESS');
  });

  it('is loaded by Prometheus, every rule healthy after its first evaluations', async () => {
    await expect
      .poll(
        async () => {
          const response = (await (await fetch(`${prometheusUrl}/api/v1/rules`)).json()) as {
            data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
          };
          return response.data.groups.flatMap((g) => g.rules).map((r) => ({ name: r.name, health: r.health, error: r.lastError ?? '' }));
        },
        { timeout: 20_000, interval: 500 },
      )
      .toEqual(rules.map((r) => ({ name: r.alert, health: 'ok', error: '' })));
  });

  it.each(rules.map((r) => [r.alert!, r.expr]))('%s: the expression evaluates', async (_alert, expr) => {
    const result = await query(expr);
    expect(result.error).toBeUndefined();
    expect(result.status).toBe('success');
  });

  /** Series from outside the service: kube-state-metrics in the cluster. */
  const external = new Set(['kube_pod_status_ready']);
  const selected = rules.flatMap((r) => [...r.expr.matchAll(/([a-zA-Z_:][\w:]*)\{/g)].map((m) => [r.alert!, m[1]!] as const)).filter(([, name]) => !external.has(name));

  it.each(selected)('%s reads %s, a series the service exports under the job the rules name', async (_alert, name) => {
    await expect
      .poll(async () => (await query(`count({__name__="${name}", job="${JOB}"})`)).data?.result.length ?? 0, { timeout: 20_000, interval: 500 })
      .toBe(1);
  });

  it('the dead-letter alert sees the event that failed for good, and only that one', async () => {
    const deadLetters = rules.find((r) => r.alert === 'IdentityOutboxDeadLetters')!.expr;
    await expect
      .poll(async () => (await query(deadLetters)).data?.result.map((s) => [s.metric['job'], s.value[1]]), { timeout: 20_000, interval: 500 })
      .toEqual([[JOB, '1']]);
  });
});

describe('deploy/observability/grafana-dashboard.json', () => {
  it('has panels for RPCs, bcrypt, tokens and the outbox', () => {
    const series = targets.map((t) => t.expr).join('\n');
    for (const metric of [
      'grpc_server_handled_total',
      'grpc_server_handling_seconds_bucket',
      'bcrypt_queue_depth',
      'token_verify_failures_total',
      'ext_authz_checks_total',
      'revocation_propagation_seconds_bucket',
      'outbox_oldest_pending_age_seconds',
      'outbox_dead',
      'outbox_dead_letters_total',
    ]) {
      expect(series).toContain(metric);
    }
  });

  it.each(targets.map((t) => [t.name, t.expr]))('%s returns series once scraped', async (_name, expr) => {
    // A query that does not parse fails at once; one that parses may wait for the scrape.
    expect((await query(expr)).error).toBeUndefined();
    await expect
      .poll(
        async () => {
          const result = await query(expr);
          expect(result.error).toBeUndefined();
          return result.data?.result.length ?? 0;
        },
        { timeout: 20_000, interval: 500 },
      )
      .toBeGreaterThan(0);
  });

  it('the method, code and reason panels show what the load did', async () => {
    /** The values of `label` over the series of the panel's query that groups by it. */
    const labelsOf = async (panel: string, label: string) => {
      const target = targets.find((t) => t.panel === panel && t.expr.includes(label))!;
      return new Set((await query(target.expr)).data!.result.map((s) => s.metric[label]));
    };
    await expect.poll(() => labelsOf('Requests by method', 'grpc_method'), { timeout: 20_000, interval: 500 }).toEqual(new Set(['RegisterUser', 'Authenticate', 'RefreshToken', 'Logout', 'VerifyToken', 'Check']));
    expect(await labelsOf('Non-OK responses by method and code', 'grpc_code')).toEqual(new Set(['AlreadyExists', 'InvalidArgument', 'Unauthenticated']));
    expect(await labelsOf('Token failures by reason', 'reason')).toEqual(new Set(['malformed', 'missing']));
    // The counter starts every result at zero, so "unavailable" is there too, at rate 0.
    const checks = targets.find((t) => t.panel === 'ext_authz Check answers by result')!;
    const byResult = new Map((await query(checks.expr)).data!.result.map((s) => [s.metric['result'], Number(s.value[1])]));
    expect([...byResult.keys()]).toEqual(expect.arrayContaining(['allowed', 'denied']));
    expect(byResult.get('unavailable') ?? 0).toBe(0);
    expect(await labelsOf('API connections and streams refused at the limits', 'kind')).toContain('connection');
    expect(await labelsOf('Refresh tokens by outcome', 'outcome')).toEqual(new Set(['rotated']));
    expect(await labelsOf('Relay publishes and errors', 'kind')).toContain('event');
  });

  it('the revocation panel shows the logout reaching the replica within the contract\'s second', async () => {
    const target = targets.find((t) => t.panel === 'Revocation propagation p99')!;
    const p99 = async () => Number((await query(target.expr)).data?.result[0]?.value[1] ?? Number.NaN);
    await expect.poll(p99, { timeout: 20_000, interval: 500 }).not.toBeNaN();
    expect(await p99()).toBeLessThanOrEqual(1);
  });

  it('the signing key panel shows the configured rotation period and the age of the key the service just made', async () => {
    const value = async (metric: string) => {
      const target = targets.find((t) => t.expr.includes(metric))!;
      const [sample, ...others] = (await query(target.expr)).data!.result;
      expect(others).toEqual([]);
      return Number(sample!.value[1]);
    };
    expect(await value('signing_key_rotation_period_seconds')).toBe(30 * 86_400);
    const age = await value('signing_key_active_age_seconds');
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThan(300);
  });
});
