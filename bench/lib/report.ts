import { mkdir, writeFile } from 'node:fs/promises';
import type { MachineInfo } from './machine.js';

/** /s rate, ms latency, MB decimal megabytes, x factor, n a count. */
type Unit = '/s' | 'ms' | 'MB' | 'x' | 'n';

export interface Figure {
  readonly value: number;
  readonly unit: Unit;
  /** What was measured, when the column header does not say it (e.g. "raw compare, 1 thread"). */
  readonly label?: string;
}

/** One line of the results table. */
export interface ResultRow {
  readonly scenario: string;
  readonly measure: string;
  readonly service: Figure;
  readonly baseline?: Figure;
  /** service / baseline (or the growth factor, for scale). */
  readonly ratio?: number;
  readonly target: string;
  /** undefined: a figure shown for information, with no target. */
  readonly pass?: boolean;
  readonly notes?: string;
}

export interface RunReport {
  readonly machine: MachineInfo;
  readonly mode: { readonly quick: boolean; readonly compiled: boolean; readonly only: readonly string[] };
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly seconds: number;
  readonly loadAverage: { readonly start: readonly number[]; readonly end: readonly number[] };
  readonly rows: readonly ResultRow[];
  readonly errors: readonly { readonly scenario: string; readonly error: string }[];
}

const GROUPED = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function formatFigure(figure: Figure | undefined): string {
  if (figure === undefined) return '–';
  const { value, unit, label } = figure;
  const text = Number.isNaN(value)
    ? 'n/a'
    : unit === '/s'
      ? `${value >= 100 ? GROUPED.format(value) : value.toFixed(value >= 10 ? 1 : 2)}/s`
      : unit === 'ms'
        ? `${value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)} ms`
        : unit === 'MB'
          ? `${value.toFixed(1)} ${unit}`
          : unit === 'x'
            ? `${value.toFixed(2)}×`
            : GROUPED.format(value);
  return label === undefined ? text : `${text} (${label})`;
}

const formatRatio = (ratio: number | undefined) => (ratio === undefined || Number.isNaN(ratio) ? '–' : `${(ratio * 100).toFixed(1)} %`);
const formatResult = (pass: boolean | undefined) => (pass === undefined ? 'info' : pass ? '**pass**' : '**FAIL**');
const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

export function toMarkdown(report: RunReport): string {
  const { machine, loadAverage } = report;
  const load = (values: readonly number[]) => values.map((value) => value.toFixed(2)).join(' / ');
  const mode = [
    report.mode.quick ? 'quick' : 'full',
    report.mode.compiled ? 'compiled service' : 'service through tsx (memory: compiled)',
    ...(report.mode.only.length > 0 ? [`only ${report.mode.only.join(', ')}`] : []),
  ].join(', ');
  const lines = [
    '# Identity service benchmark',
    '',
    `- Date: ${report.startedAt} (took ${Math.round(report.seconds)} s, ${mode} run)`,
    `- Machine: ${machine.cpuModel}, ${machine.cores} cores, ${(machine.memoryBytes / 2 ** 30).toFixed(1)} GiB RAM, ${machine.os}`,
    `- Software: Node ${machine.node}, ${machine.postgres}, nats-server ${machine.natsServer}`,
    `- Service settings: BCRYPT_COST ${machine.bcryptCost}, HASH_WORKERS ${machine.hashWorkers}`,
    `- Load average (1/5/15 min): ${load(loadAverage.start)} at start, ${load(loadAverage.end)} at end`,
    '',
    '| scenario | measure | service | baseline | ratio | target | result | notes |',
    '|---|---|---|---|---|---|---|---|',
    ...report.rows.map((row) =>
      `| ${[row.scenario, row.measure, formatFigure(row.service), formatFigure(row.baseline), formatRatio(row.ratio), row.target, formatResult(row.pass), row.notes ?? '']
        .map(cell)
        .join(' | ')} |`,
    ),
  ];
  if (report.errors.length > 0) {
    lines.push('', '## Scenarios that failed to run', '', ...report.errors.map(({ scenario, error }) => `- ${scenario}: ${cell(error)}`));
  }
  return `${lines.join('\n')}\n`;
}

export async function writeReport(directory: URL, report: RunReport): Promise<void> {
  await mkdir(directory, { recursive: true });
  await writeFile(new URL('latest.json', directory), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(new URL('latest.md', directory), toMarkdown(report));
}

/** A row whose service figure must reach `minRatio` of the baseline (throughput targets). */
export function ratioRow(row: Omit<ResultRow, 'ratio' | 'pass' | 'target'> & { readonly baseline: Figure; readonly minRatio: number }): ResultRow {
  const { minRatio, ...rest } = row;
  const ratio = row.service.value / row.baseline.value;
  return { ...rest, ratio, target: `≥ ${Math.round(minRatio * 100)} % of baseline`, pass: ratio >= minRatio };
}

/** A row whose service figure must stay below `limit` (latency and memory targets). */
export function limitRow(row: Omit<ResultRow, 'pass' | 'target'> & { readonly limit: number }): ResultRow {
  const { limit, ...rest } = row;
  return { ...rest, target: `< ${formatFigure({ value: limit, unit: row.service.unit })}`, pass: row.service.value < limit };
}

/** Decimal megabytes, as the targets are written ("under 200 MB"). */
export const toMB = (bytes: number) => bytes / 1e6;
