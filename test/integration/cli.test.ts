/**
 * The CLI's flags: both seed servers' spellings, and clear failures for what is not supported.
 */
import { describe, expect, it } from 'vitest';
import { runCli, startCli } from '../helpers/cli-server.js';
import { sharedModel, STORIES } from '../helpers/shared-models.js';

const dir = sharedModel(STORIES);

describe('edgellm CLI', () => {
  it('prints help', async () => {
    const { code, output } = await runCli(['serve', '--help']);
    expect(code).toBe(0);
    expect(output).toMatch(/--server-name/);
  });

  it.each([
    [['serve', 'x', '--tp', '2'], /tensor parallelism is not supported yet/],
    [['serve', 'x', '--dtype', 'int3'], /--dtype must be one of fp32, fp16, q8, q4/],
    [['serve', 'x', '--only_cpu', '--device', 'cuda'], /--only-cpu conflicts with --device cuda/],
    [['serve', 'x', '--no-such-flag'], /Unknown option '--no-such-flag'/],
    [['serve', 'x.gguf', '--gguf-accuracy', 'fast'], /--gguf-accuracy must be one of exact, int8/],
    [['serve'], /no model given/],
  ])('rejects %j', async (args, message) => {
    const { code, output } = await runCli(args);
    expect(code).toBe(2);
    expect(output).toMatch(message);
  });

  it('fails clearly for a missing model directory', async () => {
    const { code, output } = await runCli(['serve', './no/such/model', '--port', '0']);
    expect(code).toBe(1);
    expect(output).toMatch(/no such directory/i);
  });

  it.each([
    [['./no/such/model.gguf'], /GGUF model \.\/no\/such\/model\.gguf: no such file/],
    [['./no/such/model.gguf', '--dtype', 'q8'], /--dtype q8 does not apply to a GGUF model: leave it out .* or use fp32/],
    [['./no/such/model.gguf', '--lora_model', './no/such/adapter'], /--lora-model \.\/no\/such\/adapter: no such file or directory/],
  ])('fails clearly for GGUF %j', async (args, message) => {
    const { code, output } = await runCli(['serve', ...args, '--port', '0']);
    expect(code).toBe(1);
    expect(output).toMatch(message);
  });

  it.skipIf(!dir)('refuses --lora-model on an ONNX model folder, naming what is supported', async () => {
    const { code, output } = await runCli(['serve', dir!, '--lora_model', dir!, '--port', '0']);
    expect(code).toBe(1);
    expect(output).toMatch(/--lora-model needs a GGUF base model .* is an ONNX model folder/);
  });

  it.skipIf(!dir)('fails at start-up when a demanded GPU is not there', async () => {
    const { code, output } = await runCli(['serve', dir!, '--device', 'cuda', '--port', '0']);
    expect(code).toBe(1);
    expect(output).toMatch(/could not start on cuda/);
    expect(output).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12/);
  });

  it.skipIf(!dir)('accepts the lmdeploy and Chinese-LLaMA-Alpaca spellings, and finishes in-flight work on SIGTERM', async () => {
    const server = await startCli([
      'api_server', '--base_model', dir!, '--instance_num', '4', '--tp', '1', '--only_cpu', '--gpus', '0', '--load_in_8bit',
      '--tokenizer_path', dir!,
    ]);
    expect(server.output()).toMatch(/device cpu, dtype q8/);
    const response = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Once', max_tokens: 200, ignore_eos: true, stream: true }),
    });
    const reader = response.body!.getReader();
    await reader.read();
    const exit = server.stop('SIGTERM');
    let text = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(await exit).toBe(0);
  });

  it.skipIf(!dir)('logs one JSON line per request with tokens and timings (--log-format json)', async () => {
    const server = await startCli([dir!, '--log-format', 'json']);
    try {
      const response = await fetch(`${server.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 5, stream: true, stream_options: { include_usage: true } }),
      });
      const text = await response.text();
      const usage = JSON.parse(text.split('\n\n').filter(Boolean).at(-2)!.slice('data: '.length)).usage;
      await fetch(`${server.url}/health`);
      await fetch(`${server.url}/v1/nope`);
      await new Promise((r) => setTimeout(r, 200));
      const lines = server.output().trim().split('\n').map((line) => JSON.parse(line));
      expect(lines.every((l) => typeof l.time === 'string' && ['info', 'error'].includes(l.level) && typeof l.msg === 'string')).toBe(true);
      expect(lines.some((l) => /^serving .* \(device cpu/.test(l.msg))).toBe(true);
      const requests = lines.filter((l) => l.type === 'request');
      expect(requests.map((r) => [r.method, r.path, r.status])).toEqual([
        ['POST', '/v1/chat/completions', 200],
        ['GET', '/v1/nope', 404],
      ]);
      expect(requests[0]).toMatchObject({ prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens, aborted: false });
      expect(requests[0].ttft_ms).toBeGreaterThan(0);
      expect(requests[0].total_ms).toBeGreaterThanOrEqual(requests[0].ttft_ms);
    } finally {
      await server.stop();
    }
  });

  it.skipIf(!dir)('on SIGTERM, /health answers 503 draining until the listener closes (--drain-delay); --metrics-public', async () => {
    const server = await startCli([dir!, '--api-keys', 'k', '--metrics-public', '--drain-delay', '1.5']);
    try {
      const metrics = await fetch(`${server.url}/metrics`, { headers: { 'x-request-id': 'scrape-1' } });
      expect(metrics.status).toBe(200);
      expect(metrics.headers.get('x-request-id')).toBe('scrape-1');
      expect(await metrics.text()).toMatch(/^edgellm:model_info\{model_name="karpathy__stories260K"\} 1$/m);
      expect((await fetch(`${server.url}/v1/models`)).status).toBe(401);
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
      const exit = server.stop('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      const draining = await fetch(`${server.url}/health`);
      expect(draining.status).toBe(503);
      expect(await draining.json()).toEqual({ status: 'draining' });
      // Still serving while draining: the balancer decides when to stop sending.
      const models = await fetch(`${server.url}/v1/models`, { headers: { authorization: 'Bearer k' } });
      expect(models.status).toBe(200);
      expect(await exit).toBe(0);
      await expect(fetch(`${server.url}/health`)).rejects.toThrow();
    } finally {
      await server.stop();
    }
  });
});
