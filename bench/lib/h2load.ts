/**
 * Throughput with h2load (Debian's nghttp2-client), for the rows where the grpc-js load
 * generator would saturate before the server does. h2load counts an HTTP 200 as a success
 * even when grpc-status says otherwise, so every run is checked elsewhere: one call decoded
 * with grpcCall, and the server's own counters read before and after.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import http2 from 'node:http2';

export interface H2loadOptions {
  /** http://host:port/package.Service/Method (h2c with prior knowledge). */
  readonly url: string;
  /** A file holding the request body: the gRPC envelope and the protobuf message. */
  readonly bodyFile: string;
  /** Connections, streams per connection and client threads (`-c`, `-m`, `-t`). */
  readonly connections: number;
  readonly streams: number;
  readonly threads: number;
  readonly warmupSeconds: number;
  readonly durationSeconds: number;
  /** Default `application/grpc` (with `te: trailers`); `application/json` for Connect unary JSON. */
  readonly contentType?: string;
}

export interface H2loadResult {
  readonly requestsPerSecond: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly errored: number;
  readonly timedOut: number;
  /** Mean and max time for a request, in ms. */
  readonly meanMs: number;
  readonly maxMs: number;
  /** The command line, for the notes. */
  readonly command: string;
}

/** The h2load binary on PATH, or an error that says how to get it. */
export function requireH2load(): string {
  const found = spawnSync('h2load', ['--version'], { encoding: 'utf8' });
  if (found.error !== undefined || found.status !== 0) {
    throw new Error('h2load is missing: install it with `apt-get install -y nghttp2-client` (Debian/Ubuntu) and run the bench again');
  }
  return found.stdout.trim().split('\n')[0] ?? 'h2load';
}

export async function runH2load(options: H2loadOptions): Promise<H2loadResult> {
  const args = [
    '-c', String(options.connections),
    '-m', String(options.streams),
    '-t', String(options.threads),
    '--warm-up-time', `${options.warmupSeconds}s`,
    '-D', `${options.durationSeconds}s`,
    '-d', options.bodyFile,
    ...(options.contentType === undefined || options.contentType.startsWith('application/grpc')
      ? ['-H', `content-type: ${options.contentType ?? 'application/grpc'}`, '-H', 'te: trailers']
      : ['-H', `content-type: ${options.contentType}`]),
    options.url,
  ];
  const child = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`h2load exited ${String(code)}:\n${output}`);
  return { ...parseH2load(output), command: `h2load ${args.filter((arg) => arg !== options.bodyFile).join(' ').replace(/-d /, '')}` };
}

const MS_PER_UNIT: Record<string, number> = { us: 0.001, ms: 1, s: 1000 };

function parseH2load(output: string): Omit<H2loadResult, 'command'> {
  const finished = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(output);
  const requests = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(output);
  const times = /time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)/.exec(output);
  if (finished === null || requests === null || times === null) throw new Error(`cannot read h2load's output:\n${output}`);
  const ms = (value: string, unit: string) => Number(value) * (MS_PER_UNIT[unit] ?? Number.NaN);
  return {
    requestsPerSecond: Number(finished[1]),
    succeeded: Number(requests[1]),
    failed: Number(requests[2]),
    errored: Number(requests[3]),
    timedOut: Number(requests[4]),
    maxMs: ms(times[3]!, times[4]!),
    meanMs: ms(times[5]!, times[6]!),
  };
}

/** A gRPC length-prefixed message: flag 0 (not compressed), big-endian length, the bytes. */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** One gRPC call over h2c with a prepared body: its grpc-status and the response message. */
export async function grpcCall(url: string, body: Buffer): Promise<{ status: string | undefined; message: Buffer }> {
  const { origin, pathname } = new URL(url);
  const session = http2.connect(origin);
  try {
    const stream = session.request({ ':method': 'POST', ':path': pathname, 'content-type': 'application/grpc', te: 'trailers' });
    let status: string | undefined;
    const chunks: Buffer[] = [];
    stream.on('response', (headers) => (status ??= headers['grpc-status'] as string | undefined));
    stream.on('trailers', (trailers) => (status = trailers['grpc-status'] as string | undefined));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.end(body);
    await once(stream, 'close');
    const all = Buffer.concat(chunks);
    return { status, message: all.length >= 5 ? all.subarray(5, 5 + all.readUInt32BE(1)) : Buffer.alloc(0) };
  } finally {
    session.close();
  }
}

/** One Connect unary JSON call over h2c: the HTTP status and the body. */
export async function jsonCall(url: string, body: string): Promise<{ status: number; body: string }> {
  const { origin, pathname } = new URL(url);
  const session = http2.connect(origin);
  try {
    const stream = session.request({ ':method': 'POST', ':path': pathname, 'content-type': 'application/json' });
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.end(body);
    await once(stream, 'close');
    return { status, body: Buffer.concat(chunks).toString('utf8') };
  } finally {
    session.close();
  }
}
