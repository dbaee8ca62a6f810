import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CodedError } from '../../domain/shared/coded-error.js';

/** Another live process holds the embedded database's directory. */
class DataDirInUseError extends CodedError {
  readonly code = 'DB.DATA_DIR_IN_USE';

  constructor(dir: string, pid: number, host: string) {
    const where = host === hostname() ? `process ${pid}` : `process ${pid} on host ${host} (if it is gone, delete ${join(dir, 'identity.pid')})`;
    super(`data directory ${dir} is in use by ${where}: the embedded database serves one process only`);
  }
}

/**
 * PGlite does not keep two processes apart and loses writes when they share a directory,
 * so the first process takes a pid file and a second one refuses to start. A pid file
 * whose process is gone (a crash, a killed container) is taken over. The file names the host
 * too: a container on a shared volume is PID 1 like its neighbour, and a process on another
 * host cannot be checked, so its lock is respected.
 */
export function lockDataDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'identity.pid');
  for (;;) {
    try {
      writeFileSync(path, `${process.pid}@${hostname()}`, { flag: 'wx', mode: 0o600 });
      return () => rmSync(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const [pidText = '', host = hostname()] = readFileSync(path, 'utf8').trim().split('@');
    const holder = Number.parseInt(pidText, 10);
    if (Number.isInteger(holder) && (host !== hostname() || (holder !== process.pid && isAlive(holder)))) {
      throw new DataDirInUseError(dir, holder, host);
    }
    rmSync(path, { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
