import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Scope } from './scope.js';

/** A bench process (load generator, baseline, writer) driven over Node's IPC channel. */
export interface ChildHandle {
  readonly pid: number;
  /** False once the process has exited. */
  alive(): boolean;
  /** Runs one command in the child and resolves with what it returned. */
  call<T>(command: string, params?: unknown): Promise<T>;
  /** Disconnects (the child exits when its channel closes), then kills it if it lingers. */
  close(): Promise<void>;
}

interface Reply {
  readonly id?: number;
  readonly ready?: boolean;
  readonly result?: unknown;
  readonly error?: string;
}

const EXIT_WAIT_MS = 5_000;

/**
 * Forks `entry` (a .ts file, run through tsx) and waits until it has loaded its modules and
 * said so, so that start-up never counts in a measurement. The child is closed with `scope`.
 */
export async function startChild(entry: URL, scope: Scope): Promise<ChildHandle> {
  const child = fork(fileURLToPath(entry), [], {
    execArgv: ['--import', 'tsx'],
    // Structured clone: tens of thousands of tokens cross the channel in one message.
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  // once() rejects on an 'error' event (the fork failed): treat it as an exit.
  const exited = once(child, 'exit').catch((error: unknown) => [null, String(error)]);
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  let failure: Error | undefined;
  const failAll = (error: Error) => {
    failure = error;
    for (const { reject } of pending.values()) reject(error);
    pending.clear();
  };
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (reply: Reply) => {
      if (reply.ready === true) return resolve();
      const waiter = reply.id === undefined ? undefined : pending.get(reply.id);
      if (waiter === undefined) return;
      pending.delete(reply.id!);
      if (reply.error !== undefined) waiter.reject(new Error(reply.error));
      else waiter.resolve(reply.result);
    });
    void exited.then(([code, signal]) => {
      const error = new Error(`${fileURLToPath(entry)} exited (${String(code ?? signal)})`);
      reject(error);
      failAll(error);
    });
  });
  const handle: ChildHandle = {
    pid: child.pid!,
    alive: () => child.exitCode === null && child.signalCode === null,
    call<T>(command: string, params?: unknown): Promise<T> {
      if (failure !== undefined) return Promise.reject(failure);
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
        child.send({ id, command, params });
      });
    },
    close: () => stopChild(child, exited),
  };
  scope.defer(`stop ${entry.pathname.split('/').pop()}`, () => handle.close());
  await ready;
  return handle;
}

async function stopChild(child: ChildProcess, exited: Promise<unknown[]>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  if (child.connected) child.disconnect();
  const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_WAIT_MS);
  await exited;
  clearTimeout(timer);
}

/** Starts a one-shot bench process, runs one command in it, and stops it. */
export async function runOnce<T>(entry: URL, command: string, params: unknown, scope: Scope): Promise<T> {
  const child = await startChild(entry, scope);
  try {
    return await child.call<T>(command, params);
  } finally {
    await child.close();
  }
}
