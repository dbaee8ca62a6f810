import { Code, ConnectError } from '@connectrpc/connect';
import { describe, expect, it } from 'vitest';
import { HealthCheckResponse_ServingStatus as ServingStatus } from '../../src/gen/grpc/health/v1/health_pb.js';
import { inMemoryApi } from '../helpers/router-transport.js';

const IDENTITY = 'identity.v1.IdentityService';

describe('grpc.health.v1.Health through the in-memory router', () => {
  it('Check answers SERVING or NOT_SERVING from the readiness verdict, NOT_FOUND for another service', async () => {
    const api = inMemoryApi();
    await expect(api.health.check({ service: '' })).resolves.toMatchObject({ status: ServingStatus.SERVING });
    api.readiness.set(false);
    await expect(api.health.check({ service: IDENTITY })).resolves.toMatchObject({ status: ServingStatus.NOT_SERVING });
    const error = await api.health.check({ service: 'no.such.Service' }).catch((e: unknown) => ConnectError.from(e));
    expect(error).toMatchObject({ code: Code.NotFound });
  });

  it('Watch stays open and sends each change, then NOT_SERVING and its end when the server drains', async () => {
    const api = inMemoryApi();
    const stream = api.health.watch({ service: IDENTITY })[Symbol.asyncIterator]();
    const next = async () => (await stream.next()).value?.status;
    expect(await next()).toBe(ServingStatus.SERVING);
    api.readiness.set(false);
    expect(await next()).toBe(ServingStatus.NOT_SERVING);
    api.readiness.set(true);
    expect(await next()).toBe(ServingStatus.SERVING);
    // Drained while the handler still waits for its last answer to be read: NOT_SERVING all the same.
    api.readiness.startDraining();
    expect(await next()).toBe(ServingStatus.NOT_SERVING);
    expect(await stream.next()).toMatchObject({ done: true });
    expect(api.readiness.subscribers).toBe(0);
  });

  it('Watch of an unknown service sends SERVICE_UNKNOWN and stays open through changes', async () => {
    const api = inMemoryApi();
    const abort = new AbortController();
    const stream = api.health.watch({ service: 'no.such.Service' }, { signal: abort.signal })[Symbol.asyncIterator]();
    expect((await stream.next()).value?.status).toBe(ServingStatus.SERVICE_UNKNOWN);
    api.readiness.set(false);
    // Nothing new to say about an unknown service; the call ends only when the caller leaves.
    const after = stream.next();
    abort.abort();
    await expect(after).rejects.toMatchObject({ code: Code.Canceled });
  });

  it('Watch ends with OK when its lifetime is over, and gives its subscription back', async () => {
    const api = inMemoryApi({ healthWatchLifetimeMs: 20 });
    const statuses: ServingStatus[] = [];
    for await (const { status } of api.health.watch({ service: IDENTITY })) statuses.push(status);
    expect(statuses).toEqual([ServingStatus.SERVING]);
    expect(api.readiness.subscribers).toBe(0);
  });

  it('Watch past the cap on watchers is RESOURCE_EXHAUSTED; a freed place can be taken again', async () => {
    const api = inMemoryApi({ maxHealthWatchers: 1 });
    const watch = (signal?: AbortSignal) => api.health.watch({ service: IDENTITY }, { signal })[Symbol.asyncIterator]();
    const leave = new AbortController();
    const first = watch(leave.signal);
    expect((await first.next()).value?.status).toBe(ServingStatus.SERVING);
    const refused = await watch()
      .next()
      .catch((e: unknown) => ConnectError.from(e));
    expect(refused).toMatchObject({ code: Code.ResourceExhausted });
    const ended = first.next().catch(() => undefined);
    leave.abort();
    await ended;
    await expect.poll(() => api.readiness.subscribers).toBe(0);
    const leaveAgain = new AbortController();
    const again = watch(leaveAgain.signal);
    expect((await again.next()).value?.status).toBe(ServingStatus.SERVING);
    leaveAgain.abort();
  });
});
