/**
 * What the web runtime reports while it loads, for a page to show: each event carries a sentence
 * (`message`) besides its fields, so a status line needs no formatting of its own. Events are plain
 * objects, so a Service Worker can post them to its pages as they are.
 * @module
 */

export type LoadProgress =
  /** Bytes of one file read so far, from the file cache or the network (`total` when known). */
  | { stage: 'download'; url: string; file: string; source: 'cache' | 'network'; loaded: number; total?: number; done: boolean; message: string }
  /** The file cache: which store, or why a file was not stored (the load goes on). */
  | { stage: 'cache'; message: string }
  /** The device chosen, and why (a software WebGPU adapter is skipped for wasm). */
  | { stage: 'device'; device: 'webgpu' | 'wasm'; message: string }
  /** The wasm threads onnxruntime-web will use, and why. */
  | { stage: 'threads'; threads: number; message: string }
  /** onnxruntime-web's wasm compiled and started (`ms` when done). */
  | { stage: 'wasm'; done: boolean; ms?: number; message: string }
  /** A .gguf file converted to the ONNX graph in memory. */
  | { stage: 'gguf'; done: boolean; ms?: number; message: string }
  /** The model's onnxruntime session (and its step probes) created. */
  | { stage: 'session'; done: boolean; ms?: number; message: string }
  | { stage: 'ready'; ms: number; message: string };

export type ProgressListener = (event: LoadProgress) => void;

/** A listener that never throws into the load (a page's handler failing must not fail the model). */
export function safeListener(listener: ProgressListener | undefined, onError?: (error: unknown) => void): ProgressListener {
  if (!listener) return () => {};
  return (event) => {
    try {
      listener(event);
    } catch (error) {
      onError?.(error);
    }
  };
}

/**
 * A turn of the event loop, long enough for a frame: after announcing a step that then blocks the
 * thread for seconds (a GGUF conversion, a session), so a page can paint the announcement and a
 * Service Worker's postMessage can go out before the work starts.
 */
export const letProgressOut = () => new Promise<void>((resolve) => setTimeout(resolve, 20));

/** A file's name for a status line: its path's last two parts (`onnx/model.onnx`). */
export function shortName(url: string): string {
  let path: string;
  try {
    path = decodeURIComponent(new URL(url).pathname);
  } catch {
    path = url;
  }
  return path.split('/').filter(Boolean).slice(-2).join('/');
}

const MB = 1024 * 1024;
const mb = (bytes: number) => (bytes / MB).toFixed(bytes < 10 * MB ? 2 : 1);

export function downloadMessage(file: string, source: 'cache' | 'network', loaded: number, total: number | undefined, done: boolean): string {
  const from = source === 'cache' ? 'from the cache' : 'from the network';
  if (done) return `Read ${file} (${mb(loaded)} MB) ${from}`;
  return `Reading ${file} ${from}: ${mb(loaded)}${total ? ` of ${mb(total)}` : ''} MB`;
}
