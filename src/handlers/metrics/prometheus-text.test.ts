import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
import { renderPrometheus } from './prometheus-text.js';

describe('renderPrometheus', () => {
  it('writes HELP, TYPE and samples that a Prometheus parser reads back', () => {
    const text = renderPrometheus([
      { name: 'edgellm:requests', type: 'counter', help: 'Requests.', samples: [{ labels: { model_name: 'a"b\\c\nd' }, value: 3 }] },
      { name: 'edgellm:up', type: 'gauge', help: 'Up.', samples: [{ value: 1 }] },
      { name: 'edgellm:empty', type: 'gauge', help: 'Nothing to say.', samples: [] },
      {
        name: 'edgellm:latency_seconds',
        type: 'histogram',
        help: 'Latency.',
        samples: [{ value: { bounds: [0.1, 1], counts: [2, 1, 1], sum: 3.4, count: 4 } }],
      },
    ]);
    expect(text.endsWith('\n')).toBe(true);
    expect(text).not.toContain('edgellm:empty');
    expect(text).toContain('edgellm:latency_seconds_bucket{le="1"} 3\n');
    const parsed = parsePrometheusTextFormat(text);
    expect(parsed).toEqual([
      { name: 'edgellm:requests', help: 'Requests.', type: 'COUNTER', metrics: [{ value: '3', labels: { model_name: 'a"b\\c\nd' } }] },
      { name: 'edgellm:up', help: 'Up.', type: 'GAUGE', metrics: [{ value: '1' }] },
      {
        name: 'edgellm:latency_seconds',
        help: 'Latency.',
        type: 'HISTOGRAM',
        metrics: [{ buckets: { '0.1': '2', '1': '3', '+Inf': '4' }, sum: '3.4', count: '4' }],
      },
    ]);
  });

  it('renders nothing for no samples', () => {
    expect(renderPrometheus([])).toBe('');
  });
});
