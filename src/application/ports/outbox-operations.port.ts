export interface OutboxStats {
  readonly pending: number;
  readonly dead: number;
  readonly oldestPendingAgeSeconds: number;
}

export interface FlushResult {
  readonly published: number;
  readonly failed: number;
}

/** What an operator does to the outbox by hand (`identity outbox …`). */
export interface OutboxOperations {
  stats(): Promise<OutboxStats>;
  /** Puts dead-lettered events back in line; resolves to how many. */
  retryDead(): Promise<number>;
  /** Publishes every pending event now. */
  flush(): Promise<FlushResult>;
}
