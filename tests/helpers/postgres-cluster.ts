import getPort from 'get-port';
import { execFile } from 'node:child_process';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

/**
 * A PostgreSQL cluster of the test's own, for restarts: initdb in a temp dir under /tmp, a
 * free loopback port and its socket in that dir. PostgreSQL refuses to run as root, so its
 * commands run as the `postgres` user. Disposing stops it and removes the dir.
 */
export interface PrivatePostgres extends AsyncDisposable {
  readonly port: number;
  /** postgres://postgres@127.0.0.1:<port>/<database> */
  url(database: string): string;
  createDatabase(name: string): Promise<string>;
  start(): Promise<void>;
  /** `immediate` drops every connection at once, as a crash does; `fast` shuts down cleanly. */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
}

const asPostgres = (command: string, args: readonly string[]) => run('runuser', ['-u', 'postgres', '--', command, ...args], { timeout: 60_000 });

export async function launchPostgres(): Promise<PrivatePostgres> {
  const dir = await mkdtemp('/tmp/identity-pg-');
  const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]).then((ids) => ids.map(({ stdout }) => Number(stdout.trim())));
  await chown(dir, uid!, gid!);
  const data = join(dir, 'data');
  const port = await getPort({ host: '127.0.0.1' });
  await asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=50`;
  let running = false;
  const server: PrivatePostgres = {
    port,
    url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async createDatabase(name) {
      const client = new pg.Client({ connectionString: server.url('postgres') });
      await client.connect();
      try {
        await client.query(`create database ${name}`);
      } finally {
        await client.end();
      }
      return server.url(name);
    },
    async start() {
      await asPostgres('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-o', options, '-w', '-t', '30', 'start']);
      running = true;
    },
    async stop(mode = 'immediate') {
      if (!running) return;
      running = false;
      await asPostgres('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '30', 'stop']);
    },
    async [Symbol.asyncDispose]() {
      await server.stop('immediate').catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}
