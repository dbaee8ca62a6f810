/** What a login attempt is counted against: the normalised email and the client's address. */
export interface AttemptKeys {
  readonly emailKey: string;
  readonly clientAddress: string;
}

/** Failed-login counters shared by every replica. */
export interface LoginThrottle {
  /** Throws TooManyAttemptsError while either key is in its delay. */
  assertAllowed(keys: AttemptKeys): Promise<void>;
  recordFailure(keys: AttemptKeys): Promise<void>;
  /** A success clears the email's count; the client's count stays. */
  recordSuccess(keys: AttemptKeys): Promise<void>;
}
