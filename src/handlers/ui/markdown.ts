/**
 * A small, safe markdown-to-HTML renderer for the chat page: paragraphs, line breaks, headings,
 * bold / italic / strikethrough, inline code, fenced code blocks, lists, block quotes, rules, and
 * links to http(s) URLs only.
 *
 * Safety: the text is HTML-escaped before any markup is recognised, and the only tags emitted are
 * the fixed ones written below (a link's URL is escaped text that starts with `http://` or
 * `https://`), so model output cannot inject elements, attributes or `javascript:` URLs.
 * Streaming: any prefix of a document renders to well-formed HTML; an unclosed `**` or backtick
 * stays literal until its closer arrives, an unclosed code fence runs to the end.
 *
 * Self-contained on purpose: the page embeds this function with `Function.prototype.toString()`,
 * so it references nothing outside its own body (no imports, no module-level helpers). Its helpers
 * are methods of one object literal, never `const f = () => …` or nested `function f`: bundlers that
 * keep function names (esbuild's keepNames, on by default in wrangler) wrap those in a call to a module-level
 * `__name` helper, which a minifier renames and the page would not have. `embedding.test.ts` checks.
 * @module
 */
export function renderMarkdown(source: string): string {
  const FENCE = /^ {0,3}(`{3,}|~{3,})[ \t]*([\w+#.-]*)/;
  const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
  const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
  const QUOTE = /^ {0,3}> ?(.*)$/;
  const ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])([ \t]+)(.*)$/;
  // Finished inline HTML is parked behind \u0000n\u0000 markers so later patterns cannot see into it.
  const stash: string[] = [];

  const md = {
    escape(text: string): string {
      return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
    },
    keep(html: string): string {
      return `\u0000${stash.push(html) - 1}\u0000`;
    },
    restore(text: string): string {
      return text.replace(/\u0000(\d+)\u0000/g, (_, i: string) => md.restore(stash[Number(i)]));
    },
    emphasis(text: string): string {
      return text
        .replace(/\*\*\*(?=\S)([\s\S]*?\S)\*\*\*/g, (_, t: string) => md.keep(`<strong><em>${md.emphasis(t)}</em></strong>`))
        .replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, (_, t: string) => md.keep(`<strong>${md.emphasis(t)}</strong>`))
        .replace(/(^|\W)__(?=\S)([\s\S]*?\S)__(?!\w)/g, (_, pre: string, t: string) => pre + md.keep(`<strong>${md.emphasis(t)}</strong>`))
        .replace(/~~(?=\S)([\s\S]*?\S)~~/g, (_, t: string) => md.keep(`<del>${md.emphasis(t)}</del>`))
        .replace(/\*(?=\S)([\s\S]*?\S)\*/g, (_, t: string) => md.keep(`<em>${md.emphasis(t)}</em>`))
        .replace(/(^|\W)_(?=\S)([\s\S]*?\S)_(?!\w)/g, (_, pre: string, t: string) => pre + md.keep(`<em>${md.emphasis(t)}</em>`));
    },
    inline(text: string): string {
      let html = md.escape(text);
      // Code spans first: nothing inside them is markup. CommonMark strips one space on each side.
      html = html.replace(/(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/g, (_, _ticks: string, code: string) =>
        md.keep(`<code>${/^ [\s\S]* $/.test(code) && code.trim() ? code.slice(1, -1) : code}</code>`),
      );
      // Only absolute http(s) URLs become links; anything else (javascript:, data:, relative) stays text.
      html = html.replace(/\[([^\]\n]+)\]\((https?:\/\/[^\s()\u0000]+)\)/gi, (_, label: string, url: string) =>
        md.keep(`<a href="${url}" target="_blank" rel="noopener noreferrer">${md.emphasis(label)}</a>`),
      );
      return md.restore(md.emphasis(html)).replace(/\n/g, '<br>');
    },
    startsBlock(line: string): boolean {
      return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || ITEM.test(line);
    },
    indent(line: string): number {
      return /^[ \t]*/.exec(line)![0].replace(/\t/g, '    ').length;
    },
    /** A sibling item starts at about the first item's indentation; deeper lines belong to the item. */
    sibling(line: string, base: number, ordered: boolean): boolean {
      const item = ITEM.exec(line);
      return !!item && md.indent(line) <= base + 1 && /\d/.test(item[2]) === ordered;
    },
    inside(line: string, base: number): boolean {
      return line.trim() !== '' && md.indent(line) >= base + 2;
    },
  };

  const lines = source.replace(/\r\n?/g, '\n').replace(/\u0000/g, '\uFFFD').split('\n');
  const out: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (line.trim() === '') {
      i++;
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence) {
      const body: string[] = [];
      const closing = new RegExp(`^ {0,3}${fence[1][0]}{${fence[1].length},}[ \\t]*$`);
      for (i++; i < lines.length && !closing.test(lines[i]); i++) body.push(lines[i]);
      i++; // the closing fence, or past the end while the block is still streaming in
      const lang = fence[2] ? ` class="language-${md.escape(fence[2])}"` : '';
      out.push(`<pre><code${lang}>${md.escape(body.join('\n'))}</code></pre>`);
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      const level = heading[1].length;
      out.push(`<h${level}>${md.inline(heading[2] ?? '')}</h${level}>`);
      i++;
      continue;
    }
    if (RULE.test(line)) {
      out.push('<hr>');
      i++;
      continue;
    }
    if (QUOTE.test(line)) {
      const quoted: string[] = [];
      for (; i < lines.length && QUOTE.test(lines[i]); i++) quoted.push(QUOTE.exec(lines[i])![1]);
      out.push(`<blockquote>${renderMarkdown(quoted.join('\n'))}</blockquote>`);
      continue;
    }
    const first = ITEM.exec(line);
    if (first) {
      const ordered = /\d/.test(first[2]);
      const base = first[1].length;
      const items: string[][] = [];
      let offset = 0; // the current item's content column: its deeper lines are dedented by that much
      while (i < lines.length) {
        if (md.sibling(lines[i], base, ordered)) {
          const [, lead, marker, gap, text] = ITEM.exec(lines[i])!;
          items.push([text]);
          offset = Math.min(lead.length + marker.length + gap.replace(/\t/g, '    ').length, base + 4);
        } else if (md.inside(lines[i], base)) {
          items[items.length - 1].push(lines[i].replace(/\t/g, '    ').slice(Math.min(md.indent(lines[i]), offset)));
        } else if (lines[i].trim() === '' && i + 1 < lines.length && (md.sibling(lines[i + 1], base, ordered) || md.inside(lines[i + 1], base))) {
          items[items.length - 1].push('');
        } else break;
        i++;
      }
      // An item is a small document; a tight item's single paragraph loses its <p>.
      const lis = items.map((item) => `<li>${renderMarkdown(item.join('\n')).replace(/^<p>([\s\S]*?)<\/p>/, '$1')}</li>`);
      const start = ordered ? parseInt(first[2], 10) : 1;
      out.push(ordered ? `<ol${start === 1 ? '' : ` start="${start}"`}>${lis.join('')}</ol>` : `<ul>${lis.join('')}</ul>`);
      continue;
    }
    const paragraph: string[] = [];
    for (; i < lines.length && lines[i].trim() !== '' && (paragraph.length === 0 || !md.startsBlock(lines[i])); i++) {
      paragraph.push(lines[i].trim());
    }
    out.push(`<p>${md.inline(paragraph.join('\n'))}</p>`);
  }
  return out.join('');
}
