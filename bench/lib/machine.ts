import { availableParallelism, cpus, loadavg, release, totalmem, type } from 'node:os';

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryBytes: number;
  readonly os: string;
  readonly node: string;
  readonly postgres: string;
  readonly natsServer: string;
  readonly bcryptCost: number;
  readonly hashWorkers: number;
}

export function describeMachine(extra: Pick<MachineInfo, 'postgres' | 'natsServer' | 'bcryptCost' | 'hashWorkers'>): MachineInfo {
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown CPU',
    cores: availableParallelism(),
    memoryBytes: totalmem(),
    os: `${type()} ${release()}`,
    node: process.versions.node,
    ...extra,
  };
}

/** 1, 5 and 15-minute load averages: a busy machine shows here and explains odd figures. */
export const loadAverage = (): number[] => loadavg().map((value) => Math.round(value * 100) / 100);
