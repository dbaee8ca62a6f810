import getPort from 'get-port';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { canConnect, waitUntil } from './nats.js';

/** One node of a test cluster: its client URL, and stop/start that keep its store. */
interface ClusterNode {
  readonly name: string;
  readonly url: string;
  readonly running: boolean;
  start(): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface NatsCluster extends AsyncDisposable {
  readonly nodes: readonly ClusterNode[];
  /** Every node's client URL, comma-separated, as NATS_URL takes them. */
  readonly url: string;
  node(name: string): ClusterNode;
  /** Resolves once JetStream answers API requests (a meta leader is elected). */
  waitForJetStream(timeoutMs?: number): Promise<void>;
}

/**
 * A JetStream cluster of `size` nats-servers on loopback, each with its own config file and
 * store dir under one temp dir, routed to each other. Disposing kills them all and removes the dir.
 */
export async function launchNatsCluster(size = 3): Promise<NatsCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'identity-nats-cluster-'));
  const ports = await Promise.all(Array.from({ length: size }, async () => ({ client: await getPort({ host: '127.0.0.1' }), route: await getPort({ host: '127.0.0.1' }) })));
  const clusterName = `identity-test-${ports[0]!.client}`;
  const nodes = await Promise.all(
    ports.map(async ({ client, route }, i) => {
      const name = `n${i + 1}`;
      const storeDir = join(dir, name);
      await mkdir(storeDir);
      const routes = ports.filter((_, j) => j !== i).map((other) => `"nats-route://127.0.0.1:${other.route}"`);
      const configFile = join(dir, `${name}.conf`);
      await writeFile(
        configFile,
        [
          `server_name: ${name}`,
          `listen: "127.0.0.1:${client}"`,
          `jetstream { store_dir: "${storeDir}" }`,
          `cluster { name: ${clusterName}, listen: "127.0.0.1:${route}", routes: [${routes.join(', ')}] }`,
        ].join('\n'),
      );
      return clusterNode(name, client, configFile);
    }),
  );
  // Nodes wait for their routes, so they start together.
  await Promise.all(nodes.map((node) => node.start()));
  const cluster: NatsCluster = {
    nodes,
    url: nodes.map((node) => node.url).join(','),
    node: (name) => nodes.find((node) => node.name === name) ?? raise(`no node ${name}`),
    async waitForJetStream(timeoutMs = 30_000) {
      const live = nodes.filter((node) => node.running).map((node) => node.url);
      await waitUntil(
        async () => {
          const nc = await connect({ servers: live, timeout: 2_000 });
          try {
            const jsm = await jetstreamManager(nc, { timeout: 2_000 });
            await jsm.getAccountInfo();
            return true;
          } finally {
            await nc.close();
          }
        },
        timeoutMs,
        'JetStream cluster did not elect a meta leader',
      );
    },
    async [Symbol.asyncDispose]() {
      await Promise.all(nodes.map((node) => node.stop('SIGKILL')));
      await rm(dir, { recursive: true, force: true });
    },
  };
  await cluster.waitForJetStream();
  return cluster;
}

function clusterNode(name: string, port: number, configFile: string): ClusterNode {
  let child: ChildProcess | undefined;
  let log = '';
  const node: ClusterNode = {
    name,
    url: `nats://127.0.0.1:${port}`,
    get running() {
      return child !== undefined;
    },
    async start() {
      if (child !== undefined) return;
      log = '';
      const started = spawn('nats-server', ['-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
      started.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()));
      started.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
      child = started;
      await waitUntil(
        async () => {
          if (started.exitCode !== null) throw new Error(`nats-server ${name} exited (${started.exitCode}): ${log}`);
          return (await canConnect(port)) && log.includes('Server is ready');
        },
        15_000,
        () => `nats-server ${name} did not start: ${log}`,
      );
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
  };
  return node;
}

function raise(message: string): never {
  throw new Error(message);
}
