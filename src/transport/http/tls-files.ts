import { readFile, stat } from 'node:fs/promises';
import type { TlsOptions } from './api-server.js';

/** Where a listener's certificate, key and (for mutual TLS) client CA are on disk. */
export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly clientCa?: string | undefined;
}

export async function readTlsFiles(files: TlsFiles): Promise<TlsOptions> {
  const [cert, key, clientCa] = await Promise.all([readFile(files.cert), readFile(files.key), files.clientCa === undefined ? undefined : readFile(files.clientCa)]);
  return { cert, key, clientCa };
}

/**
 * What identifies the files' current contents without reading them: device, inode, size and
 * mtime of each, symlinks followed. cert-manager and the kubelet replace a Secret's files by
 * swapping a `..data` symlink to a new directory, so the target's inode changes even when
 * its mtime and size do not; a file rewritten in place changes its mtime.
 */
async function signature(files: TlsFiles): Promise<string> {
  const paths = [files.cert, files.key, files.clientCa].filter((path) => path !== undefined);
  const stats = await Promise.all(paths.map((path) => stat(path)));
  return stats.map((s) => `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`).join('|');
}

export interface TlsWatchOptions {
  readonly files: TlsFiles;
  readonly intervalMs: number;
  /** Installs the new contents (ApiServer.setSecureContext); a throw (a key that does not match, half-written PEM) keeps the old ones. */
  readonly apply: (tls: TlsOptions) => void;
  readonly onReloaded: () => void;
  readonly onFailed: (error: unknown) => void;
}

/**
 * Polls the files' signature and re-reads them when it changes, without a restart. A poll
 * rather than fs.watch: a watch on a file follows its inode and goes quiet after the symlink
 * swap above, and a watch on the directory misses changes behind a symlink. A change that
 * cannot be applied yet (the certificate written before its key) is tried again at every
 * poll until it can, and reported once. Returns the stop function.
 */
export function watchTlsFiles(options: TlsWatchOptions): () => void {
  let applied: string | undefined;
  let reported: string | undefined;
  let running = false;
  const poll = async () => {
    if (running) return;
    running = true;
    try {
      const current = await signature(options.files);
      if (applied === undefined) applied = current;
      if (current === applied) return;
      try {
        options.apply(await readTlsFiles(options.files));
        applied = current;
        reported = undefined;
        options.onReloaded();
      } catch (error) {
        if (reported !== current) options.onFailed(error);
        reported = current;
      }
    } catch (error) {
      // A file missing for a moment (mid-swap): the next poll sees the new one.
      if (reported !== 'missing') options.onFailed(error);
      reported = 'missing';
    } finally {
      running = false;
    }
  };
  void poll();
  const timer = setInterval(() => void poll(), options.intervalMs).unref();
  return () => clearInterval(timer);
}
