/**
 * Content negotiation for GET /: a browser gets the docs, curl and API clients keep the JSON.
 * @module
 */

/** True when the Accept header ranks text/html above application/json (a browser navigating). */
export function prefersHtml(accept: string | null): boolean {
  if (!accept) return false;
  const quality = (type: string) => {
    let best = 0;
    for (const part of accept.split(',')) {
      const [range, ...params] = part.trim().toLowerCase().split(';');
      const q = Number(params.map((p) => p.trim()).find((p) => p.startsWith('q='))?.slice(2) ?? 1);
      // Only an explicit type counts: curl's */* must keep getting JSON.
      if (range.trim() === type) best = Math.max(best, Number.isFinite(q) ? q : 0);
    }
    return best;
  };
  const html = quality('text/html');
  return html > 0 && html >= quality('application/json');
}
