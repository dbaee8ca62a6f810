import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `identity <args>` to completion, as an operator would (node + tsx on the sources). */
export async function runCli(args: readonly string[], env: Record<string, string>, timeoutMs = 60_000): Promise<CliResult> {
  const child = spawnCli(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return { code, signal, stdout, stderr };
}

/** `compiledEntry`: a main.js from buildService() to run with plain node instead of tsx. */
function spawnCli(args: readonly string[], env: Record<string, string>, compiledEntry?: string): ChildProcessWithoutNullStreams {
  // PATH and HOME only from the parent: the child's configuration is exactly `env`.
  const base = { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '' };
  const entry = compiledEntry === undefined ? ['--import', 'tsx', 'src/main.ts'] : [compiledEntry];
  return spawn(process.execPath, [...entry, ...args], { cwd: ROOT, env: { ...base, ...env } });
}

/** The container image's heap bounds (Dockerfile); they hold the compiled service only, not tsx's loader. */
export const IMAGE_NODE_OPTIONS = '--max-old-space-size=96 --max-semi-space-size=8';

export interface CompiledService extends AsyncDisposable {
  /** main.js of the build. */
  readonly entry: string;
}

/** Compiles src/ as the image build does (tsconfig.build.json) into a temporary directory. */
export async function buildService(): Promise<CompiledService> {
  const directory = await mkdtemp(join(tmpdir(), 'identity-test-build-'));
  // Compiled files find packages by walking up from their directory: give them the project's.
  await symlink(join(ROOT, 'node_modules'), join(directory, 'node_modules'), 'dir');
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  await promisify(execFile)(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', join(directory, 'dist'), '--sourceMap', 'false'], { cwd: ROOT });
  return { entry: join(directory, 'dist', 'main.js'), [Symbol.asyncDispose]: () => rm(directory, { recursive: true, force: true }) };
}

export interface ServerProcess extends AsyncDisposable {
  readonly child: ChildProcessWithoutNullStreams;
  readonly apiUrl: string;
  readonly adminUrl: string;
  /** Every JSON log line so far. */
  readonly logs: Record<string, unknown>[];
  /** Everything written to stderr so far. */
  readonly stderr: () => string;
  /** Resolves with the exit code (or signal) once the process is gone. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `identity serve` as its own process and waits for its "started" log line, which
 * carries the ports it bound (use PORT=0 and ADMIN_PORT=0). Logs must be at info or lower.
 */
export async function startServerProcess(env: Record<string, string>, timeoutMs = 60_000, compiledEntry?: string): Promise<ServerProcess> {
  // The management port is off unless a test asks for it (its default, 50052, is one fixed port for every process).
  const child = spawnCli(['serve'], { MANAGEMENT_PORT: '0', ...env, LOG_LEVEL: env['LOG_LEVEL'] === 'silent' ? 'info' : (env['LOG_LEVEL'] ?? 'info') }, compiledEntry);
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  let buffer = '';
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  const started = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry['msg'] === 'identity service started') resolve(entry);
        } catch {
          // not a log line
        }
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    void exited.then(({ code, signal }) => reject(new Error(`identity serve exited (${code ?? signal}) before starting: ${stderr}`)));
    setTimeout(() => reject(new Error(`identity serve did not start within ${timeoutMs} ms: ${stderr}`)), timeoutMs).unref();
  });
  const entry = await started;
  return {
    child,
    apiUrl: `http://127.0.0.1:${String(entry['port'])}`,
    adminUrl: `http://127.0.0.1:${String(entry['adminPort'])}`,
    logs,
    stderr: () => stderr,
    exited,
    async [Symbol.asyncDispose]() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
