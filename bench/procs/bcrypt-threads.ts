import { once } from 'node:events';
import { Worker } from 'node:worker_threads';

export interface ThreadsTask {
  readonly op: 'hash' | 'compare';
  readonly password: string;
  readonly cost: number;
  readonly hash: string;
  /** Epoch ms after which each thread finishes its current operation and stops. */
  readonly until: number;
}

/** Runs `threads` bcrypt threads until `task.until`; `onDone` hears of every finished operation. */
export async function runBcryptThreads(threads: number, task: ThreadsTask, onDone: (at: number, hash?: string) => void): Promise<void> {
  const workers = Array.from({ length: threads }, () => new Worker(new URL('./bcrypt-thread.js', import.meta.url), { workerData: task }));
  for (const worker of workers) worker.on('message', (message: { at: number; hash?: string }) => onDone(message.at, message.hash));
  await Promise.all(
    workers.map(async (worker) => {
      const [code] = (await once(worker, 'exit')) as [number];
      if (code !== 0) throw new Error(`a bcrypt thread exited with code ${code}`);
    }),
  );
}
