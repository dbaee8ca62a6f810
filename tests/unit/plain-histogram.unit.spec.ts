import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { PlainHistogram } from '../../src/infrastructure/observability/plain-histogram.js';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const LABELS = ['grpc_type', 'grpc_service', 'grpc_method'] as const;
const config = (registry: Registry) => ({ name: 'grpc_server_handling_seconds', help: 'Latency.', labelNames: LABELS, buckets: BUCKETS, registers: [registry] });

const verify = { grpc_type: 'unary', grpc_service: 'identity.v1.IdentityService', grpc_method: 'VerifyToken' };
const check = { grpc_type: 'unary', grpc_service: 'envoy.service.auth.v3.Authorization', grpc_method: 'Check' };

/** The same observations into prom-client's own Histogram and into a PlainHistogram, each on its own registry. */
function both(observations: readonly (readonly [typeof verify, number])[], declared: readonly (typeof verify)[] = []) {
  const own = new Registry();
  const plain = new Registry();
  const reference = new Histogram(config(own));
  const histogram = new PlainHistogram(config(plain));
  for (const labels of declared) histogram.series(labels);
  for (const [labels, value] of observations) {
    reference.observe(labels, value);
    histogram.series(labels).observe(value);
  }
  return { own, plain, histogram };
}

// Values on bounds, between them, below the first and above the last (only +Inf counts those).
const observations = [
  [verify, 0.0004],
  [verify, 0.001],
  [verify, 0.0031],
  [check, 0.0025],
  [verify, 0.7],
  [check, 12],
  [verify, 10],
  [check, 0.000_01],
] as const;

describe('PlainHistogram', () => {
  it('exports the text prom-client writes for the same observations', async () => {
    const { own, plain } = both(observations);
    const text = await plain.metrics();
    expect(text).toBe(await own.metrics());
    expect(text).toContain('grpc_server_handling_seconds_bucket{le="0.001",grpc_type="unary",grpc_service="identity.v1.IdentityService",grpc_method="VerifyToken"} 2');
    expect(text).toContain('grpc_server_handling_seconds_count{grpc_type="unary",grpc_service="envoy.service.auth.v3.Authorization",grpc_method="Check"} 3');
  });

  it('gives the values prom-client gives as JSON', async () => {
    const { own, plain } = both(observations);
    // prom-client's declared value type leaves out the metricName every histogram value carries.
    type Value = { labels: object; value: number; metricName?: string };
    const strip = (metrics: Awaited<ReturnType<Registry['getMetricsAsJSON']>>) =>
      metrics.map(({ name, help, type, values }) => ({ name, help, type, values: (values as Value[]).map(({ labels, value, metricName }) => ({ labels, value, metricName })) }));
    expect(strip(await plain.getMetricsAsJSON())).toEqual(strip(await own.getMetricsAsJSON()));
  });

  it('exports a series only once it has been observed, as prom-client does', async () => {
    const { own, plain } = both([[verify, 0.002]], [check]);
    expect(await plain.metrics()).toBe(await own.metrics());
    expect(await plain.metrics()).not.toContain('Check');
  });

  it('resolves a series once per label set and starts again from zero on reset', async () => {
    const { plain, histogram } = both(observations);
    expect(histogram.series({ ...verify })).toBe(histogram.series(verify));
    histogram.reset();
    expect(await plain.metrics()).not.toContain('_bucket');
    histogram.series(verify).observe(0.02);
    expect(await plain.metrics()).toContain('grpc_server_handling_seconds_sum{grpc_type="unary",grpc_service="identity.v1.IdentityService",grpc_method="VerifyToken"} 0.02');
  });

  it('refuses a label set with a label missing', () => {
    const { histogram } = both([]);
    expect(() => histogram.series({ grpc_type: 'unary', grpc_service: 'x' })).toThrow(/grpc_method missing/);
  });
});
