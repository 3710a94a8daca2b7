/**
 * Download progress output: a redrawn bar on a TTY, sparse log lines elsewhere (CI, Docker logs).
 * Pure apart from the injected writer and clock, so it can be unit tested.
 * @module
 */

export interface ProgressOptions {
  /** true: one line redrawn with `\r` (at most ~10 times a second); false: a line every 10% (or 5 s). */
  tty: boolean;
  write: (s: string) => void;
  /** Milliseconds clock; default Date.now. */
  now?: () => number;
}

export interface Progress {
  /** Adds `bytes` received since the previous call. */
  update(bytes: number): void;
  /** Writes the final state; later calls do nothing. */
  done(): void;
}

const REDRAW_MS = 100;
const UNKNOWN_TOTAL_LOG_MS = 5000;
const BAR_WIDTH = 20;

/** 1234567 -> "1.2 MB" (decimal units, like the Hub's own listings). */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} KB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

export function createProgress(label: string, total: number | undefined, options: ProgressOptions): Progress {
  const now = options.now ?? Date.now;
  const { write, tty } = options;
  const known = total !== undefined && total > 0;
  const start = now();
  let bytes = 0;
  let lastDraw = -Infinity;
  let lastLog = start;
  let lastDecile = 0;
  let lastWidth = 0;
  let finished = false;

  const rate = (t: number): string => {
    const secs = (t - start) / 1000;
    return secs > 0 ? `${formatBytes(Math.round(bytes / secs))}/s` : '-';
  };
  const amount = (): string => (known ? `${formatBytes(bytes)}/${formatBytes(total)}` : formatBytes(bytes));
  const percent = (): number => (known ? Math.min(100, Math.floor((bytes / total) * 100)) : 0);

  const draw = (t: number): void => {
    lastDraw = t;
    let line: string;
    if (known) {
      const filled = Math.round((percent() / 100) * BAR_WIDTH);
      const bar = '#'.repeat(filled) + '-'.repeat(BAR_WIDTH - filled);
      line = `${label} [${bar}] ${String(percent()).padStart(3)}% ${amount()} ${rate(t)}`;
    } else {
      line = `${label} ${amount()} ${rate(t)}`;
    }
    // Pad with spaces so a shorter line fully covers the previous one.
    write(`\r${line}${' '.repeat(Math.max(0, lastWidth - line.length))}`);
    lastWidth = line.length;
  };

  return {
    update(n: number): void {
      if (finished) return;
      bytes += n;
      const t = now();
      if (tty) {
        if (t - lastDraw >= REDRAW_MS) draw(t);
      } else if (known) {
        const decile = Math.min(10, Math.floor((bytes * 10) / total));
        if (decile > lastDecile && decile < 10) {
          lastDecile = decile;
          write(`${label}: ${decile * 10}% (${amount()}, ${rate(t)})\n`);
        }
      } else if (t - lastLog >= UNKNOWN_TOTAL_LOG_MS) {
        lastLog = t;
        write(`${label}: ${amount()} (${rate(t)})\n`);
      }
    },
    done(): void {
      if (finished) return;
      finished = true;
      const t = now();
      if (tty) {
        draw(t);
        write('\n');
      } else {
        const secs = ((t - start) / 1000).toFixed(1);
        write(`${label}: done, ${formatBytes(bytes)} in ${secs} s (${rate(t)})\n`);
      }
    },
  };
}
