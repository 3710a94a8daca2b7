// How much CPU other processes (and the hypervisor: steal) took while a phase ran. The machine is
// shared: a test suite started by someone else during a run halves its figures, and this says so.
// busy = all non-idle time of /proc/stat; ours = utime+stime of the benchmark and its children
// (all threads included), each child read one last time just before it is killed.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

let HZ = 100;
try {
  HZ = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {}

function readProcTicks(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system, all threads) a process has used so far, or undefined. */
export function processCpuSeconds(pid) {
  const t = readProcTicks(pid);
  return t === undefined ? undefined : t / HZ;
}

function readStat() {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    return { busy: user + nice + system + irq + softirq, idle: idle + iowait, steal: steal || 0 };
  } catch {
    return undefined;
  }
}

export class CpuMonitor {
  constructor() {
    this.pids = new Set([process.pid]);
    this.last = new Map();
  }

  track(pid) {
    if (pid) this.pids.add(pid);
  }

  /** Call just before a child is killed: keeps its final CPU time. */
  finalize(pid) {
    const t = readProcTicks(pid);
    if (t !== undefined) this.last.set(pid, t);
  }

  ours() {
    let sum = 0;
    for (const pid of this.pids) {
      const t = readProcTicks(pid);
      if (t !== undefined) this.last.set(pid, t);
      sum += this.last.get(pid) ?? 0;
    }
    return sum;
  }

  sample() {
    const stat = readStat();
    return stat ? { t: performance.now(), ...stat, ours: this.ours() } : undefined;
  }

  /** Shares of the machine's CPU time between two samples: foreign = busy - ours, steal. */
  static diff(a, b) {
    if (!a || !b) return undefined;
    const cores = os.cpus().length;
    const wallS = (b.t - a.t) / 1000;
    const capacity = wallS * cores;
    const busyS = (b.busy - a.busy) / HZ;
    const oursS = (b.ours - a.ours) / HZ;
    const stealS = (b.steal - a.steal) / HZ;
    return {
      wallS,
      busyShare: busyS / capacity,
      oursShare: oursS / capacity,
      foreignShare: Math.max(0, busyS - oursS) / capacity,
      stealShare: stealS / capacity,
    };
  }
}

export const cpu = new CpuMonitor();
