import fs from 'node:fs';

const SAMPLE_INTERVAL_MS = 50;

function statusField(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (!match) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(match[1]) * 1024;
}

export interface RssGrowth {
  beforeBytes: number;
  peakBytes: number;
  growthBytes: number;
}

/**
 * Follows a process's resident memory during a measurement. Samples VmRSS every 50 ms; where the
 * kernel lets us reset the high-water mark (clear_refs 5), VmHWM also catches a peak between samples.
 */
export function watchPeakRss(pid: number): { stop(): RssGrowth } {
  const beforeBytes = statusField(pid, 'VmRSS');
  let peakBytes = beforeBytes;
  let highWaterMarkReset = false;
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    highWaterMarkReset = true;
  } catch {
    // Not permitted here: the samples alone give the peak.
  }
  const sample = () => {
    try {
      peakBytes = Math.max(peakBytes, statusField(pid, 'VmRSS'));
    } catch {
      // The process is gone; the caller finds out from its request.
    }
  };
  const timer = setInterval(sample, SAMPLE_INTERVAL_MS);
  return {
    stop() {
      clearInterval(timer);
      sample();
      if (highWaterMarkReset) {
        try {
          peakBytes = Math.max(peakBytes, statusField(pid, 'VmHWM'));
        } catch {
          // As above.
        }
      }
      return { beforeBytes, peakBytes, growthBytes: peakBytes - beforeBytes };
    },
  };
}
