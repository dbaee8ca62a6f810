/**
 * The base of every error the service expects to meet: a stable code that outlives class
 * names (codes cross processes, `instanceof` does not) and the class name as `name`, so
 * logs say which error it was without each subclass setting it by hand.
 */
export abstract class CodedError extends Error {
  abstract readonly code: string;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}
