export function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** { median, min, max, n } over the finite values. */
export function summary(xs) {
  const s = xs.filter((x) => Number.isFinite(x));
  if (!s.length) return { median: NaN, min: NaN, max: NaN, n: 0 };
  return { median: median(s), min: Math.min(...s), max: Math.max(...s), n: s.length };
}

export function fmt(x, digits = 1) {
  if (x === undefined || x === null || !Number.isFinite(x)) return 'n/a';
  return x.toFixed(digits);
}

/** "median [min–max]" */
export function fmtRange(s, digits = 1) {
  if (!s || !s.n) return 'n/a';
  if (s.n === 1) return fmt(s.median, digits);
  return `${fmt(s.median, digits)} [${fmt(s.min, digits)}–${fmt(s.max, digits)}]`;
}

export const MB = (b) => b / 1e6;
