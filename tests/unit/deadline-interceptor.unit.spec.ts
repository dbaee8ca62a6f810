/**
 * REQUEST_TIMEOUT_SECONDS counts from the moment the call's stream opened, reading the request
 * included (issue 19): the time Connect spent reading the body is taken off what is left.
 */
import { performance } from 'node:perf_hooks';
import { Code, ConnectError, createContextValues, type StreamRequest, type UnaryRequest, type UnaryResponse } from '@connectrpc/connect';
import { describe, expect, it } from 'vitest';
import { deadlineInterceptor, kCallOpenedAt, withCallOpenedAt } from '../../src/transport/connect/interceptors/deadline.interceptor.js';
import { kRequestSignal } from '../../src/transport/connect/request-context.js';

const TIMEOUT_MS = 1_000;

function request(openedMsAgo: number | undefined): UnaryRequest {
  const values = createContextValues();
  if (openedMsAgo !== undefined) values.set(kCallOpenedAt, performance.now() - openedMsAgo);
  return { stream: false, signal: new AbortController().signal, contextValues: values } as unknown as UnaryRequest;
}

/** A handler that runs until its request signal aborts (as the use cases do), or 5 s. */
const slowHandler = async (req: UnaryRequest | StreamRequest): Promise<UnaryResponse> => {
  const signal = req.contextValues.get(kRequestSignal)?.signal;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 5_000);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return {} as UnaryResponse;
};

async function timeToDeadline(req: UnaryRequest): Promise<{ ms: number; error: unknown }> {
  const started = performance.now();
  const error = await deadlineInterceptor(TIMEOUT_MS)(slowHandler)(req).then(
    () => undefined,
    (reason: unknown) => reason,
  );
  return { ms: performance.now() - started, error };
}

describe('deadlineInterceptor', () => {
  it('gives a call whose body took 800 ms to read only the 200 ms left', async () => {
    const { ms, error } = await timeToDeadline(request(800));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.DeadlineExceeded);
    expect(ms).toBeGreaterThanOrEqual(150);
    expect(ms).toBeLessThan(700);
  });

  it('answers DEADLINE_EXCEEDED at once when the time was all spent reading', async () => {
    const { ms, error } = await timeToDeadline(request(1_500));
    expect((error as ConnectError).code).toBe(Code.DeadlineExceeded);
    expect(ms).toBeLessThan(100);
  });

  it('gives the whole timeout when nothing stamped the opening (another adapter)', async () => {
    const { ms, error } = await timeToDeadline(request(undefined));
    expect((error as ConnectError).code).toBe(Code.DeadlineExceeded);
    expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
  });

  it('withCallOpenedAt stamps the moment the context values are made', () => {
    const before = performance.now();
    const values = withCallOpenedAt(() => createContextValues())({});
    expect(values.get(kCallOpenedAt)).toBeGreaterThanOrEqual(before);
    expect(values.get(kCallOpenedAt)).toBeLessThanOrEqual(performance.now());
  });
});
