import { Histogram, type HistogramConfiguration, type LabelValues } from 'prom-client';

/** What prom-client's Histogram.get() gives (its types for it are not exported). */
type Exported<T extends string> = Awaited<ReturnType<Histogram<T>['get']>>;
type ExportedValue = Exported<string>['values'][number];

/** One labelled series of a PlainHistogram: its observations in plain numbers. */
export class PlainHistogramSeries {
  /** Observations per bucket (not cumulative), as prom-client keeps them: each in the first bucket whose bound it does not exceed. */
  private readonly perBucket: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(
    private readonly labels: Readonly<Record<string, string | number>>,
    private readonly bounds: readonly number[],
  ) {
    this.perBucket = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    const { bounds } = this;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.perBucket[i]! += 1;
        break;
      }
    }
    this.sum += value;
    this.count += 1;
  }

  reset(): void {
    this.perBucket.fill(0);
    this.sum = 0;
    this.count = 0;
  }

  /** The series as prom-client's Histogram exports one: cumulative buckets, +Inf, _sum, _count; nothing before the first observation. */
  exported(name: string): ExportedValue[] {
    if (this.count === 0) return [];
    let cumulative = 0;
    const buckets = this.bounds.map((le, i) => {
      cumulative += this.perBucket[i]!;
      return { labels: { le, ...this.labels }, value: cumulative, metricName: `${name}_bucket` };
    });
    return [
      ...buckets,
      { labels: { le: '+Inf', ...this.labels }, value: this.count, metricName: `${name}_bucket` },
      { labels: { ...this.labels }, value: this.sum, metricName: `${name}_sum` },
      { labels: { ...this.labels }, value: this.count, metricName: `${name}_count` },
    ];
  }
}

type PlainHistogramConfiguration<T extends string> = HistogramConfiguration<T> & { readonly buckets: number[] };

/**
 * A prom-client Histogram whose series are observed in plain numbers: prom-client's own
 * observe() validates and hashes the label set on every call, 2 % of a cached VerifyToken and
 * a string of garbage per call (issue 16). A series is resolved once (series()) and observed
 * with a few additions; a scrape exports every series as prom-client's Histogram would, in the
 * same shape (tests/unit/plain-histogram). Its series are observed only through series().
 */
export class PlainHistogram<T extends string> extends Histogram<T> {
  private readonly bounds: readonly number[];
  private readonly seriesByLabels = new Map<string, PlainHistogramSeries>();

  constructor(private readonly configuration: PlainHistogramConfiguration<T>) {
    super(configuration);
    this.bounds = [...configuration.buckets];
  }

  /** The series of `labels` (every label name given), made on first use. */
  series(labels: LabelValues<T>): PlainHistogramSeries {
    const copy: Record<string, string | number> = {};
    for (const name of this.configuration.labelNames ?? []) {
      const value = labels[name];
      if (value === undefined) throw new Error(`${this.configuration.name}: label ${name} missing`);
      copy[name] = value;
    }
    const key = JSON.stringify(copy);
    let series = this.seriesByLabels.get(key);
    if (series === undefined) this.seriesByLabels.set(key, (series = new PlainHistogramSeries(copy, this.bounds)));
    return series;
  }

  override get(): Promise<Exported<T>> {
    return Promise.resolve(this.getForPromString());
  }

  /** What the registry exports (it asks for this before get()); labels in full, none shared. */
  getForPromString(): Exported<T> {
    const { name, help } = this.configuration;
    const values = [...this.seriesByLabels.values()].flatMap((series) => series.exported(name));
    const exported = { name, help, type: 'histogram', values, aggregator: this.configuration.aggregator ?? 'sum' };
    // As prom-client's Histogram returns it at run time; its declared type differs (a numeric MetricType, a collect member).
    return exported as unknown as Exported<T>;
  }

  override reset(): void {
    super.reset();
    // prom-client's constructor calls reset() before this class's fields exist.
    (this.seriesByLabels as Map<string, PlainHistogramSeries> | undefined)?.forEach((series) => series.reset());
  }
}
