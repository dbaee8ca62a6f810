/**
 * Cleanups of one scenario (or of the whole run), run in reverse order of registration, so a
 * service stops before its database is dropped. A failing cleanup is reported and the others
 * still run: a benchmark must not leave databases, streams or processes behind.
 */
export class Scope {
  private readonly cleanups: { label: string; run: () => Promise<void> | void }[] = [];

  defer(label: string, run: () => Promise<void> | void): void {
    this.cleanups.push({ label, run });
  }

  async close(report: (message: string) => void): Promise<void> {
    while (this.cleanups.length > 0) {
      const cleanup = this.cleanups.pop()!;
      try {
        await cleanup.run();
      } catch (error) {
        report(`cleanup "${cleanup.label}" failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
}
