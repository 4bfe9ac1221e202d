import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { round } from './stats.mjs';

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ; 100 on every Linux we run on

/** VmRSS (anon / file parts), VmHWM in KiB and thread count, or null once the process is gone. */
export function readMemory(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const field = (name) => {
    const m = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  };
  return {
    rssKiB: field('VmRSS'),
    hwmKiB: field('VmHWM'),
    rssAnonKiB: field('RssAnon'),
    rssFileKiB: field('RssFile'),
    threads: field('Threads'),
  };
}

/** User + system CPU seconds of all threads of the process. */
export function readCpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces; fields resume after its closing paren.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

/** `pid` and its child processes (the workers of a WORKERS > 1 service). */
export function processTree(pid) {
  const children = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const list = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8');
      children.push(...list.split(' ').filter(Boolean).map(Number));
    }
  } catch {
    // gone, or no children file
  }
  return [pid, ...children];
}

/** Resets VmHWM to the current RSS (Linux clear_refs 5); false if not allowed. */
export function resetPeakRss(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * Polls VmRSS of a set of processes every `intervalMs` and keeps the peak.
 * VmHWM (reset at start when possible) catches spikes between samples.
 */
export class RssSampler {
  constructor(pids, intervalMs = 50) {
    this.pids = pids;
    this.intervalMs = intervalMs;
    this.peaks = Object.fromEntries(Object.keys(pids).map((k) => [k, 0]));
    this.samples = 0;
    this.hwmReset = {};
    this.timer = undefined;
  }

  start() {
    for (const [name, pid] of Object.entries(this.pids)) {
      this.hwmReset[name] = resetPeakRss(pid);
    }
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    return this;
  }

  sample() {
    this.samples++;
    for (const [name, pid] of Object.entries(this.pids)) {
      const mem = readMemory(pid);
      if (mem && mem.rssKiB > this.peaks[name]) this.peaks[name] = mem.rssKiB;
    }
  }

  /** Per process: peak sampled RSS and VmHWM at the end, in MiB. */
  stop() {
    clearInterval(this.timer);
    this.sample();
    const result = {};
    for (const [name, pid] of Object.entries(this.pids)) {
      const mem = readMemory(pid);
      result[name] = {
        peakRssMiB: round(this.peaks[name] / 1024, 1),
        hwmMiB: mem ? round(mem.hwmKiB / 1024, 1) : null,
        atEnd: mem && {
          rssMiB: round(mem.rssKiB / 1024, 1),
          anonMiB: round(mem.rssAnonKiB / 1024, 1),
          fileMiB: round(mem.rssFileKiB / 1024, 1),
          threads: mem.threads,
        },
        hwmResetAtStart: this.hwmReset[name],
      };
    }
    return {
      samples: this.samples,
      intervalMs: this.intervalMs,
      processes: result,
    };
  }
}

/** Machine-wide busy and total CPU seconds (all cores) from /proc/stat. */
export function readMachineCpu() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line
    .split(/\s+/)
    .slice(1, 9)
    .map(Number);
  const idleAll = idle + iowait;
  const total = user + nice + system + idleAll + irq + softirq + steal;
  return {
    busySeconds: (total - idleAll) / CLOCK_TICKS_PER_SECOND,
    totalSeconds: total / CLOCK_TICKS_PER_SECOND,
  };
}
