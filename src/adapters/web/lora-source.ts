/**
 * LoRA adapters for the web adapter's `loraModules` (a Worker's LORA_MODULES): each path is a PEFT
 * folder (`<path>/adapter_config.json` + `<path>/adapter_model.safetensors`) or a `.gguf` LoRA file,
 * resolved against the base URL and read through the same fetch (or binding) as the model files.
 * @module
 */
import { dequantize } from '../../gguf/quants.js';
import { readGguf } from '../../gguf/reader.js';
import { peftFilesToGguf, readGgufLora, type GgufLora } from '../../lora/gguf-merge.js';
import type { FetchLike } from './binding-fetch.js';
import type { MemoryBudget } from './model-files.js';

/** Reads every adapter; each one's `name` is its model id. */
export async function loadWebLoras(
  modules: readonly { name: string; path: string }[],
  baseUrl: string | URL | undefined,
  fetcher: FetchLike,
  budget: MemoryBudget,
): Promise<GgufLora[]> {
  const base = baseUrl ?? (globalThis as { location?: { href: string } }).location?.href;
  const read = async (name: string, path: string, file: string) => {
    if (!/^[a-z][a-z\d+.-]*:/i.test(path) && !base) throw new Error(`LoRA ${name}: ${path} is not a URL and there is no base URL to resolve it against.`);
    const url = new URL(file, new URL(path, base)).href;
    let response: Response;
    try {
      response = await fetcher(url);
    } catch (error) {
      throw new Error(`LoRA ${name}: could not fetch ${url}: ${(error as Error).message}`, { cause: error });
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`LoRA ${name}: could not fetch ${url}: HTTP ${response.status}.`);
    }
    return budget.read(response, `LoRA ${name}`);
  };
  const out: GgufLora[] = [];
  for (const { name, path } of modules) {
    if (/\.gguf([?#].*)?$/i.test(path)) {
      out.push({ ...readGgufLora(readGguf(await read(name, path, '')), name, dequantize), name });
      continue;
    }
    const folder = path.endsWith('/') ? path : `${path}/`;
    const configText = new TextDecoder().decode(await read(name, folder, 'adapter_config.json'));
    out.push(peftFilesToGguf(configText, await read(name, folder, 'adapter_model.safetensors'), name, `LoRA ${name}`));
  }
  return out;
}
