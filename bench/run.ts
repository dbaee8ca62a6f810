/**
 * `npm run bench [-- --quick] [-- --only <scenario>]`: runs each scenario side by side with
 * its raw baseline, measured in the same run on the same machine, shows progress on stderr,
 * and writes bench/results/latest.json and latest.md. See bench/README.md.
 */
import { availableParallelism } from 'node:os';
import { parseBenchArgs } from './lib/args.js';
import { buildService } from './lib/build.js';
import { nowMs } from './lib/clock.js';
import type { BenchContext } from './lib/context.js';
import { adminQuery } from './lib/database.js';
import { startLoadGenerator } from './lib/loadgen.js';
import { describeMachine, loadAverage } from './lib/machine.js';
import { connectNats } from './lib/nats.js';
import { toMarkdown, writeReport, type ResultRow, type RunReport } from './lib/report.js';
import { Scope } from './lib/scope.js';
import { scenarios } from './scenarios/index.js';

const ADMIN_DATABASE_URL = process.env['BENCH_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NATS_URL = process.env['BENCH_NATS_URL'] ?? 'nats://127.0.0.1:4222';
const RESULTS = new URL('./results/', import.meta.url);
/** The service's default cost; HASH_WORKERS is its default too (one thread per core). */
const BCRYPT_COST = 12;
const MIN_NODE_MAJOR = 24;

const started = nowMs();
const log = (scope: string, message: string) => {
  const seconds = ((nowMs() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[${seconds} s] ${scope}: ${message}\n`);
};

async function main(): Promise<number> {
  if (Number(process.versions.node.split('.')[0]) < MIN_NODE_MAJOR) {
    throw new Error(`Node ${MIN_NODE_MAJOR}+ is needed, this is ${process.versions.node}: run it with npm run bench (the node package)`);
  }
  const args = parseBenchArgs(process.argv.slice(2), scenarios.map((scenario) => scenario.name));
  const selected = scenarios.filter((scenario) => args.only.length === 0 || args.only.includes(scenario.name));
  const startedAt = new Date().toISOString();
  const loadStart = loadAverage();
  const cores = availableParallelism();
  const hashWorkers = cores;

  const runScope = new Scope();
  let current: Scope | undefined;
  const interrupt = (signal: NodeJS.Signals) => {
    log('bench', `${signal}: cleaning up`);
    void (async () => {
      await current?.close((message) => log('cleanup', message));
      await runScope.close((message) => log('cleanup', message));
      process.exit(130);
    })();
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);

  try {
    const nats = await connectNats(NATS_URL, runScope);
    const loadgen = await startLoadGenerator(runScope);
    let build: Promise<string> | undefined;
    const compiledService = () =>
      (build ??= (async () => {
        log('bench', 'compiling the service with tsc -p tsconfig.build.json');
        return buildService(runScope);
      })());
    const machine = describeMachine({
      postgres: `PostgreSQL ${await adminQuery(ADMIN_DATABASE_URL, 'show server_version')}`,
      natsServer: nats.nc.info?.version ?? 'unknown',
      bcryptCost: BCRYPT_COST,
      hashWorkers,
    });
    log('bench', `${args.quick ? 'quick' : 'full'} run${args.compiled ? ' (compiled service)' : ''} of ${selected.map((scenario) => scenario.name).join(', ')}; load average ${loadStart.join(' ')}`);

    const rows: ResultRow[] = [];
    const errors: { scenario: string; error: string }[] = [];
    for (const scenario of selected) {
      current = new Scope();
      const ctx: BenchContext = {
        scenario: scenario.name,
        quick: args.quick,
        adminDatabaseUrl: ADMIN_DATABASE_URL,
        natsUrl: NATS_URL,
        bcryptCost: BCRYPT_COST,
        hashWorkers,
        cores,
        scope: current,
        nats,
        loadgen,
        compiled: args.compiled,
        compiledService,
        log: (message) => log(scenario.name, message),
      };
      const scenarioStarted = nowMs();
      try {
        const scenarioRows = await scenario.run(ctx);
        rows.push(...scenarioRows);
        for (const row of scenarioRows) log(scenario.name, `${row.measure}: ${row.pass === undefined ? 'info' : row.pass ? 'pass' : 'FAIL'}`);
      } catch (error) {
        const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
        errors.push({ scenario: scenario.name, error: message.split('\n')[0]! });
        log(scenario.name, `failed: ${message}`);
      } finally {
        await current.close((message) => log(scenario.name, message));
        current = undefined;
      }
      log(scenario.name, `done in ${((nowMs() - scenarioStarted) / 1000).toFixed(0)} s`);
    }

    const report: RunReport = {
      machine,
      mode: { quick: args.quick, compiled: args.compiled, only: args.only },
      startedAt,
      finishedAt: new Date().toISOString(),
      seconds: (nowMs() - started) / 1000,
      loadAverage: { start: loadStart, end: loadAverage() },
      rows,
      errors,
    };
    await writeReport(RESULTS, report);
    process.stdout.write(toMarkdown(report));
    log('bench', `wrote bench/results/latest.md and latest.json in ${Math.round(report.seconds)} s`);
    return errors.length > 0 ? 1 : 0;
  } finally {
    await runScope.close((message) => log('cleanup', message));
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
