import http2 from 'node:http2';
import { connect, type Socket } from 'node:net';
import { pick, type BenchContext } from '../lib/context.js';
import { createDatabase } from '../lib/database.js';
import type { RunSpec } from '../lib/loadgen.js';
import { errorCount, errorText, jobNotes } from '../lib/notes.js';
import { rssBytes } from '../lib/procfs.js';
import { toMB, type ResultRow } from '../lib/report.js';
import { startScenarioService } from '../lib/service.js';
import { mintTokens } from '../lib/tokens.js';

const SETTINGS = {
  full: { tokens: 5_000, verifyPerSecond: 200, warmupMs: 4_000, durationMs: 20_000 },
  quick: { tokens: 2_000, verifyPerSecond: 200, warmupMs: 3_000, durationMs: 8_000 },
};
const IDLE_CONNECTIONS = 10_000;
const WATCH_CONNECTIONS = 10;
/** HTTP/2 streams per connection, as many as the service allows (MAX_CONCURRENT_STREAMS). */
const WATCH_STREAMS = 100;
/** A Watch stream that the service ends (refused, or its lifetime over) is opened again this much later. */
const REOPEN_WATCH_MS = 1_000;
/**
 * An idle connection that the service closes is opened again this much later: the attacker
 * keeps trying to hold 10,000, without turning the scenario into a connect flood (8,000
 * refused connections reopened every second cost the attacker, on the same two cores, as much as the service).
 */
const REOPEN_CONNECTION_MS = 5_000;
/** The attack starts once the established client is surely connected (early in the warm-up). */
const ATTACK_AFTER_MS = 1_500;

interface AttackFigures {
  connectionsOpened: number;
  /** TCP handshakes completed (the kernel's accept queue included: Node may not have seen them yet). */
  connectionsEstablished: number;
  connectionsClosedByServer: number;
  /** Attacker sockets established and not yet closed, at most at once. */
  peakConnectionsOpen: number;
  watchesOpened: number;
  watchesRefused: number;
  peakWatchesHeld: number;
}

/**
 * An attacker in this process: 10,000 TCP connections that never send a byte and a flood of
 * grpc.health.v1.Health/Watch streams (10 connections × 100), each reopened after the service
 * ends it (a Watch a second later, a connection five), so the pressure stays on for the whole window.
 */
function startAttack(target: string) {
  const [host, port] = [target.split(':')[0]!, Number(target.split(':')[1])];
  const figures: AttackFigures = {
    connectionsOpened: 0,
    connectionsEstablished: 0,
    connectionsClosedByServer: 0,
    peakConnectionsOpen: 0,
    watchesOpened: 0,
    watchesRefused: 0,
    peakWatchesHeld: 0,
  };
  let connectionsOpen = 0;
  let stopped = false;
  const sockets = new Set<Socket>();
  const sessions = new Set<http2.ClientHttp2Session>();
  const timers = new Set<NodeJS.Timeout>();
  const later = (delayMs: number, work: () => void) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!stopped) work();
    }, delayMs);
    timers.add(timer);
  };
  let held = 0;

  const idle = () => {
    const socket = connect(port, host);
    figures.connectionsOpened += 1;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.resume();
    let established = false;
    socket.once('connect', () => {
      established = true;
      figures.connectionsEstablished += 1;
      connectionsOpen += 1;
      figures.peakConnectionsOpen = Math.max(figures.peakConnectionsOpen, connectionsOpen);
    });
    socket.once('close', () => {
      sockets.delete(socket);
      if (established) connectionsOpen -= 1;
      if (stopped) return;
      figures.connectionsClosedByServer += 1;
      later(REOPEN_CONNECTION_MS, idle);
    });
  };

  const watch = (session: http2.ClientHttp2Session) => {
    if (session.closed || session.destroyed) return;
    const stream = session.request({ ':method': 'POST', ':path': '/grpc.health.v1.Health/Watch', 'content-type': 'application/grpc', te: 'trailers' });
    figures.watchesOpened += 1;
    let serving = false;
    stream.on('data', () => {
      if (serving) return;
      serving = true;
      held += 1;
      figures.peakWatchesHeld = Math.max(figures.peakWatchesHeld, held);
    });
    stream.on('error', () => undefined);
    stream.on('close', () => {
      if (serving) held -= 1;
      else figures.watchesRefused += 1;
      if (!stopped) later(REOPEN_WATCH_MS, () => watch(session));
    });
    stream.end(Buffer.from([0, 0, 0, 0, 0]));
  };

  const started = (async () => {
    // The Watch connections first: once the idle flood holds the connection slots, they would be refused too.
    for (let i = 0; i < WATCH_CONNECTIONS; i += 1) {
      const session = http2.connect(`http://${target}`);
      session.on('error', () => undefined);
      sessions.add(session);
      await new Promise((resolve) => session.once('remoteSettings', resolve));
      for (let j = 0; j < WATCH_STREAMS; j += 1) watch(session);
    }
    for (let i = 0; i < IDLE_CONNECTIONS && !stopped; i += 1) {
      idle();
      if (i % 500 === 499) await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();

  return {
    figures,
    async stop() {
      stopped = true;
      await started;
      for (const timer of timers) clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      for (const session of sessions) session.destroy();
    },
  };
}

/**
 * VerifyToken at a fixed rate from a client connected before the attack, on a quiet service and
 * then on the same service while 10,000 idle connections and a Watch flood run (issue 19). The
 * service runs compiled under the image's heap bounds, with its default limits: it must survive,
 * and the established client must get every answer.
 */
export async function hostile(ctx: BenchContext): Promise<ResultRow[]> {
  const settings = pick(ctx, SETTINGS);
  const db = await createDatabase(ctx.adminDatabaseUrl, ctx.scope);
  const service = await startScenarioService(ctx, db, {}, { compiled: true });
  const tokens = await mintTokens(service, db, settings.tokens);
  const load: RunSpec = {
    jobs: [{ label: 'VerifyToken', target: service.target, request: { rpc: 'VerifyToken', tokens }, load: { kind: 'open', ratePerSecond: settings.verifyPerSecond } }],
    warmupMs: settings.warmupMs,
    durationMs: settings.durationMs,
  };
  ctx.log(`quiet: VerifyToken ${settings.verifyPerSecond}/s, ${settings.durationMs / 1000} s`);
  const quiet = await ctx.loadgen.run(load);

  ctx.log(`hostile: the same, with ${IDLE_CONNECTIONS} idle connections and ${WATCH_CONNECTIONS}×${WATCH_STREAMS} Watch streams from ${ATTACK_AFTER_MS / 1000} s in`);
  let attack: ReturnType<typeof startAttack> | undefined;
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssBytes(service.pid))), 250);
  const attackTimer = setTimeout(() => (attack = startAttack(service.target)), ATTACK_AFTER_MS);
  let hostileRun;
  try {
    hostileRun = await ctx.loadgen.run(load);
  } finally {
    clearTimeout(attackTimer);
    clearInterval(sampler);
    await attack?.stop();
  }
  const alive = await fetch(`${service.adminUrl}/healthz`).then((response) => response.ok, () => false);
  const refused = alive ? await refusedAtLimits(service.adminUrl) : undefined;
  await service.stop();

  const [calm, stormy] = [quiet.jobs[0]!, hostileRun.jobs[0]!];
  const figures = attack?.figures;
  const attackNotes =
    figures === undefined
      ? 'the attack never started'
      : `${figures.connectionsOpened} idle connections attempted, ${figures.connectionsEstablished} established, at most ${figures.peakConnectionsOpen} open at once, ${figures.connectionsClosedByServer} closed by the service (MAX_CONNECTIONS, preface timeout); ` +
        `${figures.watchesOpened} Watch streams opened, at most ${figures.peakWatchesHeld} held at once, ${figures.watchesRefused} refused; ` +
        `the service counted ${refused?.connection ?? '?'} connections refused at MAX_CONNECTIONS and ${refused?.stream ?? '?'} streams at MAX_OPEN_STREAMS; service peak RSS ${toMB(peakRss).toFixed(0)} MB`;
  return [
    {
      scenario: 'hostile',
      measure: `VerifyToken p99 at ${settings.verifyPerSecond}/s, quiet service`,
      service: { value: calm.latency.p99, unit: 'ms' },
      target: '–',
      notes: jobNotes(calm, { client: quiet.clientCpuShare }),
    },
    {
      scenario: 'hostile',
      measure: `VerifyToken p99 at ${settings.verifyPerSecond}/s, established client during ${IDLE_CONNECTIONS} idle connections and a Watch flood`,
      service: { value: stormy.latency.p99, unit: 'ms' },
      baseline: { value: calm.latency.p99, unit: 'ms', label: 'quiet service' },
      ratio: stormy.latency.p99 / calm.latency.p99,
      target: '–',
      notes: `${jobNotes(stormy, { client: hostileRun.clientCpuShare })}; ${attackNotes}`,
    },
    {
      scenario: 'hostile',
      measure: 'VerifyToken errors for the established client, quiet / under attack',
      service: { value: errorCount(calm) + errorCount(stormy), unit: 'n' },
      target: '= 0',
      pass: errorCount(calm) + errorCount(stormy) === 0,
      notes: `quiet ${errorCount(calm)} of ${calm.ok + errorCount(calm)} ${errorText(calm)}; under attack ${errorCount(stormy)} of ${stormy.ok + errorCount(stormy)} ${errorText(stormy)}`,
    },
    {
      scenario: 'hostile',
      measure: 'service alive after the attack (image heap bounds)',
      service: { value: alive ? 1 : 0, unit: 'n' },
      target: '= 1',
      pass: alive,
    },
  ];
}

/** The service's own count of what it refused at its limits (api_refused_total). */
async function refusedAtLimits(adminUrl: string): Promise<{ connection: number; stream: number }> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const count = (kind: string) => Number(new RegExp(`^api_refused_total\\{kind="${kind}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  return { connection: count('connection'), stream: count('stream') };
}
