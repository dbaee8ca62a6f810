/** Which events `identity events tail` prints: by default only those published from now on. */
export interface TailRequest {
  /** A NATS subject, wildcards allowed; default every subject of the stream. */
  readonly subject?: string;
  readonly since?: Date;
  readonly fromSequence?: number;
}

/** One event of the stream, decoded for people and scripts (JSON). */
export interface TailedEvent {
  readonly seq: number;
  readonly subject: string;
  readonly id: string;
  readonly type: string;
  readonly source: string;
  readonly time: string;
  /** The protobuf message in its JSON mapping; absent when the type is unknown to this build or the bytes do not parse. */
  readonly event?: unknown;
  /** Why `event` is absent, with the raw payload (base64). */
  readonly undecoded?: { readonly reason: string; readonly payloadBase64: string };
}

/** What the tail reports: once that it reads the stream, then each event in stream order. */
export interface TailListener {
  ready(): void;
  event(event: TailedEvent): void;
}

/** Reads the event stream (`identity events tail`). */
export interface EventTail {
  /** Reports events until `signal` aborts; resolves then. */
  follow(request: TailRequest, listener: TailListener, signal: AbortSignal): Promise<void>;
}
