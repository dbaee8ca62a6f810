import { InvalidArgumentError, type FieldViolation } from '../domain/identity/identity.errors.js';
import type { Result } from '../domain/shared/result.js';

type Parsed<T> = { [K in keyof T]: T[K] extends Result<infer V, string> ? V : never };

/**
 * Returns every field's value when all parsed, or throws one InvalidArgumentError naming
 * each bad field (keys are the request's proto field names).
 */
export function requireValid<T extends Record<string, Result<unknown, string>>>(fields: T): Parsed<T> {
  const violations: FieldViolation[] = [];
  const values: Record<string, unknown> = {};
  for (const [field, result] of Object.entries(fields)) {
    if (result.ok) values[field] = result.value;
    else violations.push({ field, description: result.error });
  }
  if (violations.length > 0) throw new InvalidArgumentError(violations);
  return values as Parsed<T>;
}
