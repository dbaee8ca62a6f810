import type { JobResult, StepResult } from './loadgen.js';

const percent = (share: number) => `${Math.round(share * 100)} %`;
const ms = (value: number) => (Number.isNaN(value) ? 'n/a' : value >= 100 ? value.toFixed(0) : value.toFixed(value >= 10 ? 1 : 2));

/** "none", or "UNAVAILABLE×3 (first: ...)": any status other than the expected one. */
export function errorText(result: Pick<JobResult | StepResult, 'errors' | 'firstError'>): string {
  const entries = Object.entries(result.errors);
  if (entries.length === 0) return 'no errors';
  return `errors ${entries.map(([name, count]) => `${name}×${count}`).join(', ')} (first: ${result.firstError ?? '?'})`;
}

function latencyText(result: Pick<JobResult | StepResult, 'latency'>): string {
  return `p50 ${ms(result.latency.p50)} ms, p99 ${ms(result.latency.p99)} ms`;
}

/** The notes column for a load job: latency, errors, and who was busy (client or service). */
export function jobNotes(result: JobResult, cpu?: { readonly client?: number; readonly service?: number; readonly serviceLabel?: string }): string {
  const parts = [`${result.ok} calls`, latencyText(result), errorText(result)];
  if (cpu?.service !== undefined) parts.push(`${cpu.serviceLabel ?? 'service'} CPU ${percent(cpu.service)}`);
  if (cpu?.client !== undefined) parts.push(`client CPU ${percent(cpu.client)}`);
  return parts.join('; ');
}

/** An error count as a row figure and note: zero expected. */
export const errorCount = (result: Pick<JobResult | StepResult, 'errors'>): number => Object.values(result.errors).reduce((sum, count) => sum + count, 0);
