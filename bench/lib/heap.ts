import type { ServiceHandle } from './service.js';

export interface HeapFigures {
  /** V8 heap in use (live objects and garbage not yet collected), bytes. */
  readonly used: number;
  /** V8 heap reserved, bytes: what RSS follows when V8 grows its heap instead of collecting. */
  readonly total: number;
}

/**
 * The service's own V8 heap figures from its /metrics (prom-client's default Node metrics).
 * Next to RSS they tell a leak (used keeps rising) from a heap V8 merely keeps large.
 */
export async function heapFigures(service: Pick<ServiceHandle, 'adminUrl'>): Promise<HeapFigures> {
  const text = await (await fetch(`${service.adminUrl}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { used: value('nodejs_heap_size_used_bytes'), total: value('nodejs_heap_size_total_bytes') };
}
