/**
 * Prometheus text exposition format (version 0.0.4): metric families with HELP and TYPE lines,
 * samples with escaped labels, histograms as cumulative `_bucket{le}` series plus `_sum` and `_count`.
 * @module
 */
import type { HistogramSnapshot } from '../../runtime/metrics.js';

export type Labels = Record<string, string>;

export type MetricFamily =
  | { name: string; help: string; type: 'counter' | 'gauge'; samples: Array<{ labels?: Labels; value: number }> }
  | { name: string; help: string; type: 'histogram'; samples: Array<{ labels?: Labels; value: HistogramSnapshot }> };

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const escapeLabel = (value: string) => value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const escapeHelp = (value: string) => value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

function formatLabels(labels: Labels | undefined, extra?: [string, string]): string {
  const entries = Object.entries(labels ?? {});
  if (extra) entries.push(extra);
  return entries.length ? `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}` : '';
}

function formatNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Number.POSITIVE_INFINITY) return '+Inf';
  if (n === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(n);
}

export function renderPrometheus(families: MetricFamily[]): string {
  const lines: string[] = [];
  for (const family of families) {
    if (family.samples.length === 0) continue;
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
    if (family.type !== 'histogram') {
      for (const s of family.samples) lines.push(`${family.name}${formatLabels(s.labels)} ${formatNumber(s.value)}`);
      continue;
    }
    for (const { labels, value: h } of family.samples) {
      let cumulative = 0;
      h.bounds.forEach((bound, i) => {
        cumulative += h.counts[i];
        lines.push(`${family.name}_bucket${formatLabels(labels, ['le', formatNumber(bound)])} ${cumulative}`);
      });
      lines.push(`${family.name}_bucket${formatLabels(labels, ['le', '+Inf'])} ${h.count}`);
      lines.push(`${family.name}_sum${formatLabels(labels)} ${formatNumber(h.sum)}`);
      lines.push(`${family.name}_count${formatLabels(labels)} ${h.count}`);
    }
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}
