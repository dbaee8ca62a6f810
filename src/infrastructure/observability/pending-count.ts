/** What a counter series (a prom-client Counter's labelled child) must offer. */
interface CounterSeries {
  inc(value?: number): void;
}

/**
 * Counts of one series kept in a plain number between scrapes, added to the series when
 * flushed (metrics.onScrape): prom-client's inc() validates its value and, unresolved, hashes
 * the labels on every call, which the hot path pays per call (issue 16). A scrape that flushes
 * first sees every count made before it.
 */
export class PendingCount {
  private pending = 0;

  constructor(private readonly series: CounterSeries) {}

  add(): void {
    this.pending += 1;
  }

  flush(): void {
    if (this.pending === 0) return;
    this.series.inc(this.pending);
    this.pending = 0;
  }
}
