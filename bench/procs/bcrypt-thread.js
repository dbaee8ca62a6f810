// A worker thread of a raw bcrypt baseline. It uses bcrypt's synchronous calls, as the
// service's own workers do (src/infrastructure/crypto/bcrypt.worker.js), and loops until
// `until`, posting the time each operation finished (and the hash, for the register baseline).
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import bcrypt from 'bcrypt';

// workerData is typed any; bcrypt-threads.ts sets this shape.
// eslint-disable-next-line @typescript-eslint/no-unsafe-assignment
const task = /** @type {{ op: 'hash' | 'compare', password: string, cost: number, hash: string, until: number }} */ (workerData);
const now = () => performance.timeOrigin + performance.now();

while (now() < task.until) {
  if (task.op === 'hash') {
    const hash = bcrypt.hashSync(task.password, task.cost);
    parentPort?.postMessage({ at: now(), hash });
  } else {
    if (!bcrypt.compareSync(task.password, task.hash)) throw new Error('the baseline compare did not match');
    parentPort?.postMessage({ at: now() });
  }
}
