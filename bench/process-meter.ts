import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

const SAMPLE_INTERVAL_MS = 50;

function statusField(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (!match) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(match[1]) * 1024;
}

let clockTicksPerSecond: number | undefined;

/** User and system (kernel) CPU time the process has used so far. */
function cpuSeconds(pid: number): { user: number; system: number } {
  clockTicksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100;
  // The command name, in parentheses, may hold spaces: count fields from after it.
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { user: Number(fields[11]) / clockTicksPerSecond, system: Number(fields[12]) / clockTicksPerSecond };
}

export interface ProcessUsage {
  rssBeforeBytes: number;
  rssPeakBytes: number;
  rssGrowthBytes: number;
  cpuSeconds: number;
  /** The part of cpuSeconds spent in the kernel: writing, and reclaiming page cache. */
  systemCpuSeconds: number;
}

/**
 * Follows a process's memory and CPU during a measurement. Samples VmRSS every 50 ms; where the
 * kernel lets us reset the high-water mark (clear_refs 5), VmHWM also catches a peak between samples.
 */
export function meterProcess(pid: number): { stop(): ProcessUsage } {
  const rssBeforeBytes = statusField(pid, 'VmRSS');
  const cpuBefore = cpuSeconds(pid);
  let rssPeakBytes = rssBeforeBytes;
  let highWaterMarkReset = false;
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    highWaterMarkReset = true;
  } catch {
    // Not permitted here: the samples alone give the peak.
  }
  const sample = () => {
    try {
      rssPeakBytes = Math.max(rssPeakBytes, statusField(pid, 'VmRSS'));
    } catch {
      // The process is gone; the caller finds out from its request.
    }
  };
  const timer = setInterval(sample, SAMPLE_INTERVAL_MS);
  return {
    stop() {
      clearInterval(timer);
      sample();
      if (highWaterMarkReset) rssPeakBytes = Math.max(rssPeakBytes, statusField(pid, 'VmHWM'));
      const cpu = cpuSeconds(pid);
      return {
        rssBeforeBytes,
        rssPeakBytes,
        rssGrowthBytes: rssPeakBytes - rssBeforeBytes,
        cpuSeconds: cpu.user + cpu.system - cpuBefore.user - cpuBefore.system,
        systemCpuSeconds: cpu.system - cpuBefore.system,
      };
    },
  };
}
