import os from 'node:os';
import { formatNumber } from './stats.js';

/** One line of the summary: a figure of ours beside the baseline's, and whether it meets its goal. */
export interface ResultRow {
  benchmark: string;
  metric: string;
  unit: string;
  ours: number;
  baseline: number | null;
  /** ours ÷ baseline; null where a ratio means nothing (a count, say). */
  ratio: number | null;
  goal: string;
  /** null when the figure has no goal. */
  met: boolean | null;
  digits?: number;
}

export function machineDescription(): string {
  const cpus = os.cpus();
  return `${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores, ${Math.round(os.totalmem() / 1024 ** 3)} GiB RAM, Node ${process.version}, ${os.platform()} ${os.release()}`;
}

export function printComparison(label: string, ours: string, baseline: string, ratio: number | null): void {
  const ratioText = ratio === null ? '' : `  ratio ${formatNumber(ratio, 2)}`;
  console.log(`  ${label.padEnd(34)} ours ${ours.padStart(12)}   baseline ${baseline.padStart(12)}${ratioText}`);
}

export function markdownSummary(rows: ResultRow[], command: string, startedAt: Date): string {
  const mark = (met: boolean | null) => (met === null ? '' : met ? 'yes' : '**no**');
  const lines = [
    `### Benchmarks, ${startedAt.toISOString().slice(0, 10)}`,
    '',
    `Machine: ${machineDescription()}. Command: \`${command}\`.`,
    '',
    '| Benchmark | Metric | Ours | Baseline | Ratio | Goal | Met |',
    '| --- | --- | ---: | ---: | ---: | --- | --- |',
    ...rows.map((row) => {
      const value = (n: number) => `${formatNumber(n, row.digits ?? 0)} ${row.unit}`.trim();
      return `| ${row.benchmark} | ${row.metric} | ${value(row.ours)} | ${row.baseline === null ? '' : value(row.baseline)} | ${
        row.ratio === null ? '' : formatNumber(row.ratio, 2)
      } | ${row.goal} | ${mark(row.met)} |`;
    }),
  ];
  return lines.join('\n');
}
