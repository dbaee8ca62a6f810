import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/infrastructure/config/load-config.js';
import { natsServers } from '../../src/infrastructure/config/nats-servers.js';

describe('NATS_URL as a server list', () => {
  it('hands nats.js one entry per listed server, trimmed', () => {
    expect(natsServers('nats://127.0.0.1:4222')).toEqual(['nats://127.0.0.1:4222']);
    expect(natsServers('nats://n1:4222, nats://n2:4222 ,n3:4222')).toEqual(['nats://n1:4222', 'nats://n2:4222', 'n3:4222']);
    expect(natsServers(loadConfig({ NATS_URL: 'tls://a:4222,tls://[::1]:4223' }).NATS_URL)).toEqual(['tls://a:4222', 'tls://[::1]:4223']);
  });

  it('refuses an empty entry in the list', () => {
    expect(() => loadConfig({ NATS_URL: 'nats://a:4222,,nats://b:4222' })).toThrow(/NATS_URL must be a comma-separated list/);
  });
});

describe('stream shape settings', () => {
  it('defaults to one replica and no age limit', () => {
    const config = loadConfig({});
    expect(config.NATS_STREAM_REPLICAS).toBe(1);
    expect(config.NATS_STREAM_MAX_AGE_SECONDS).toBe(0);
    expect(config.OUTBOX_LEASE_SECONDS).toBe(10);
  });

  it('takes 1 to 5 replicas, as JetStream does', () => {
    expect(loadConfig({ NATS_STREAM_REPLICAS: '3' }).NATS_STREAM_REPLICAS).toBe(3);
    expect(() => loadConfig({ NATS_STREAM_REPLICAS: '0' })).toThrow(/NATS_STREAM_REPLICAS/);
    expect(() => loadConfig({ NATS_STREAM_REPLICAS: '7' })).toThrow(/NATS_STREAM_REPLICAS/);
  });

  it('refuses a max age shorter than the duplicate window, as JetStream would', () => {
    expect(loadConfig({ NATS_STREAM_MAX_AGE_SECONDS: '86400' }).NATS_STREAM_MAX_AGE_SECONDS).toBe(86_400);
    expect(() => loadConfig({ NATS_STREAM_MAX_AGE_SECONDS: '600' })).toThrow(/NATS_STREAM_MAX_AGE_SECONDS must be 0 \(no limit\) or at least NATS_DUPLICATE_WINDOW_SECONDS/);
  });
});
