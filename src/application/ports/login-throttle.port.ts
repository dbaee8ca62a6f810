/** What a login attempt is counted against: the normalised email and the client's address. */
export interface AttemptKeys {
  readonly emailKey: string;
  readonly clientAddress: string;
}

/**
 * Failed-login counters shared by every replica. An attempt is counted as a failure before
 * the password is checked, in the same step as the check of the limit: concurrent guesses
 * then cannot all slip under the limit together. A success or an attempt that ended without
 * a verdict takes its count back.
 */
export interface LoginThrottle {
  /** Counts the attempt against both keys; throws TooManyAttemptsError (counting nothing) while either waits out its delay. */
  begin(keys: AttemptKeys): Promise<void>;
  /** The password was right: the email's count starts over, and the client's attempt is taken back. */
  succeeded(keys: AttemptKeys): Promise<void>;
  /** The attempt ended without a verdict (overload, deadline, database error): it is taken back from both keys. */
  abandoned(keys: AttemptKeys): Promise<void>;
}
