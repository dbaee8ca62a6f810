export interface MigrationStatus {
  readonly applied: readonly string[];
  readonly pending: readonly string[];
}

/** The database schema's migrations, as `identity migrate` drives them. */
export interface SchemaMigrations {
  /** Applies every pending migration; resolves to their names. */
  up(): Promise<readonly string[]>;
  /** Rolls back the last batch; resolves to the names reverted. */
  down(): Promise<readonly string[]>;
  status(): Promise<MigrationStatus>;
}
