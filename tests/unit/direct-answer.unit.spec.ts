/**
 * The fast path's direct answers (issue 16) must end a call as the interceptors would: the
 * same codes and words when the server's request timeout or the caller's deadline passes
 * first, when the caller goes away and when the server shuts down; counted once; nothing left
 * behind. The e2e equivalence suite compares the answers that arrive in time with Connect's.
 */
import { EventEmitter } from 'node:events';
import type http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import { Code, ConnectError } from '@connectrpc/connect';
import { describe, expect, it } from 'vitest';
import { InvalidTokenError, TokenFailureReason } from '../../src/domain/identity/identity.errors.js';
import { answerDirectly, type DirectAnswer } from '../../src/transport/connect/direct-answer.js';
import type { FastRoute, FastServeOptions } from '../../src/transport/connect/fast-call.js';

/** A stream as far as the direct answer reads it: 'close', and whether it is closed. */
class FakeStream extends EventEmitter {
  closed = false;
  readonly session = undefined;

  close(): void {
    this.closed = true;
    this.emit('close');
  }
}

interface Harness {
  readonly stream: FakeStream;
  readonly shutdown: AbortController;
  readonly outcomes: string[];
  readonly answers: DirectAnswer[];
  readonly taken: boolean;
  /** The next answer sent. */
  readonly next: () => Promise<DirectAnswer>;
}

function start(options: {
  answer?: (input: unknown) => Promise<object>;
  answerNow?: (input: unknown) => object | undefined;
  requestTimeoutMs?: number;
  timeoutMs?: number;
  openedMsAgo?: number;
  quiet?: boolean;
  shutdown?: AbortController;
}): Harness {
  const stream = new FakeStream();
  const shutdown = options.shutdown ?? new AbortController();
  const outcomes: string[] = [];
  const answers: DirectAnswer[] = [];
  const waiting: ((answer: DirectAnswer) => void)[] = [];
  const route = {
    answer: options.answer ?? (() => new Promise<object>(() => undefined)),
    answerNow: options.answerNow,
    observation: {
      quietOnSuccess: options.quiet ?? false,
      started: () => outcomes.push('started'),
      finished: (_at: number, error: ConnectError | undefined, requestId: () => string) => outcomes.push(`${error === undefined ? 'OK' : Code[error.code]} ${requestId()}`),
    },
  } as unknown as FastRoute;
  const serve = {
    requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
    shutdownSignal: shutdown.signal,
    identity: { requestId: () => 'rid-1', clientAddress: () => '192.0.2.1' },
  } as unknown as FastServeOptions;
  const call = { stream: stream as unknown as http2.ServerHttp2Stream, headers: {}, input: 'input', openedAt: performance.now() - (options.openedMsAgo ?? 0), timeoutMs: options.timeoutMs };
  const taken = answerDirectly(route, call, serve, (answer) => {
    answers.push(answer);
    waiting.shift()?.(answer);
  });
  const next = () => new Promise<DirectAnswer>((resolve) => (answers.length > 0 ? resolve(answers[answers.length - 1]!) : waiting.push(resolve)));
  return { stream, shutdown, outcomes, answers, taken, next };
}

const codeOf = (answer: DirectAnswer) => (answer.error === undefined ? 'OK' : Code[answer.error.code]);

describe('answerDirectly', () => {
  it('sends an answer known at once before it returns, with the request id to echo', () => {
    const h = start({ answerNow: () => ({ userId: 'u' }) });
    expect(h.taken).toBe(true);
    expect(h.answers).toEqual([{ message: { userId: 'u' }, requestId: 'rid-1' }]);
    expect(h.outcomes).toEqual(['started', 'OK rid-1']);
  });

  it('echoes no request id on a quiet method success', () => {
    const h = start({ answerNow: () => ({}), quiet: true });
    expect(h.answers[0]).toEqual({ message: {}, requestId: undefined });
  });

  it('maps a thrown error by the one table, the request id in its metadata, counted once', async () => {
    const h = start({ answer: () => Promise.reject(new InvalidTokenError(TokenFailureReason.Signature)) });
    const answer = await h.next();
    expect(codeOf(answer)).toBe('Unauthenticated');
    expect(answer.error?.metadata.get('x-request-id')).toBe('rid-1');
    expect(h.outcomes).toEqual(['started', 'Unauthenticated rid-1']);
    expect(h.stream.listenerCount('close')).toBe(0);
  });

  it('answers DEADLINE_EXCEEDED at the server request timeout, with the deadline interceptor words', async () => {
    const h = start({ requestTimeoutMs: 30 });
    const answer = await h.next();
    expect(answer.error?.code).toBe(Code.DeadlineExceeded);
    expect(answer.error?.rawMessage).toBe('the request took longer than the server allows');
    expect(h.outcomes).toEqual(['started', 'DeadlineExceeded rid-1']);
  });

  it("answers DEADLINE_EXCEEDED at the caller's deadline when it comes first, with connect's words", async () => {
    const h = start({ requestTimeoutMs: 30_000, timeoutMs: 20 });
    const answer = await h.next();
    expect(answer.error?.code).toBe(Code.DeadlineExceeded);
    expect(answer.error?.rawMessage).toBe('the operation timed out');
  });

  it('counts a caller gone as CANCELED, and a late answer changes nothing', async () => {
    let resolve: (message: object) => void = () => undefined;
    const h = start({ answer: () => new Promise<object>((done) => (resolve = done)) });
    h.stream.close();
    const answer = await h.next();
    expect(codeOf(answer)).toBe('Canceled');
    resolve({});
    await new Promise((settled) => setImmediate(settled));
    expect(h.answers).toHaveLength(1);
    expect(h.outcomes).toEqual(['started', 'Canceled rid-1']);
  });

  it("answers with the server's shutdown reason when it shuts down first", async () => {
    const h = start({});
    h.shutdown.abort(new ConnectError('the server is shutting down', Code.Unavailable));
    const answer = await h.next();
    expect(answer.error?.code).toBe(Code.Unavailable);
    expect(h.stream.listenerCount('close')).toBe(0);
  });

  it('leaves to the interceptors, counting nothing, a call whose deadline already passed or whose server is shutting down', () => {
    const shutdown = new AbortController();
    shutdown.abort(new ConnectError('the server is shutting down', Code.Unavailable));
    for (const h of [start({ requestTimeoutMs: 100, openedMsAgo: 200 }), start({ timeoutMs: 5, openedMsAgo: 10 }), start({ shutdown })]) {
      expect(h.taken).toBe(false);
      expect(h.outcomes).toEqual([]);
      expect(h.answers).toEqual([]);
    }
  });
});
