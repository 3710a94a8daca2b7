import { describe, expect, it } from 'vitest';
import { renderMarkdown } from './markdown.js';

const md = renderMarkdown;

// Every tag the renderer may emit, exactly as it writes them. Anything else in the output is an injection.
const ALLOWED_TAG =
  /^<(\/?(p|br|h[1-6]|strong|em|del|code|pre|ul|ol|li|blockquote|hr|a)|a href="https?:\/\/[^"\s<>]*" target="_blank" rel="noopener noreferrer"|ol start="\d+"|code class="language-[\w+#.-]+")>$/;
const VOID = new Set(['br', 'hr']);

/** Only allowed tags, properly nested, and no `<` outside a tag (all text is escaped). */
function expectSafeAndBalanced(html: string): void {
  const stack: string[] = [];
  for (const part of html.split(/(<[^>]*>)/)) {
    if (!part.startsWith('<')) {
      expect(part).not.toMatch(/[<>"]/);
      continue;
    }
    expect(part, `tag ${part} in ${html}`).toMatch(ALLOWED_TAG);
    const name = /^<\/?([a-z0-9]+)/.exec(part)![1];
    if (VOID.has(name)) continue;
    if (part.startsWith('</')) expect(stack.pop(), `closing ${part} in ${html}`).toBe(name);
    else stack.push(name);
  }
  expect(stack, `unclosed in ${html}`).toEqual([]);
}

describe('renderMarkdown: blocks', () => {
  it('paragraphs and line breaks', () => {
    expect(md('one\ntwo\n\nthree')).toBe('<p>one<br>two</p><p>three</p>');
    expect(md('a\r\nb')).toBe('<p>a<br>b</p>');
    expect(md('')).toBe('');
    expect(md('\n\n  \n')).toBe('');
  });

  it('headings', () => {
    expect(md('# Title\n## Sub ##\n###### six')).toBe('<h1>Title</h1><h2>Sub</h2><h6>six</h6>');
    expect(md('#hashtag')).toBe('<p>#hashtag</p>');
    expect(md('####### seven')).toBe('<p>####### seven</p>');
    expect(md('text\n# heading')).toBe('<p>text</p><h1>heading</h1>');
  });

  it('fenced code blocks keep their text verbatim', () => {
    expect(md('```js\nconst a = 1 < 2 && **b**;\n\n`x`\n```\nafter')).toBe(
      '<pre><code class="language-js">const a = 1 &lt; 2 &amp;&amp; **b**;\n\n`x`</code></pre><p>after</p>',
    );
    expect(md('~~~\n# not a heading\n~~~')).toBe('<pre><code># not a heading</code></pre>');
    // A shorter fence of the other kind does not close it.
    expect(md('````\n```\n````')).toBe('<pre><code>```</code></pre>');
  });

  it('unordered and ordered lists, with continuation and nesting', () => {
    // Bullets of any kind continue one list (models mix them); numbers start another.
    expect(md('- one\n- **two**\n* three\n1. four')).toBe('<ul><li>one</li><li><strong>two</strong></li><li>three</li></ul><ol><li>four</li></ol>');
    expect(md('1. a\n2. b')).toBe('<ol><li>a</li><li>b</li></ol>');
    expect(md('3) c\n4) d')).toBe('<ol start="3"><li>c</li><li>d</li></ol>');
    expect(md('- a\n  more\n- b\n  - nested')).toBe('<ul><li>a<br>more</li><li>b<ul><li>nested</li></ul></li></ul>');
    expect(md('1. a\n   - x\n\n     y\n2. b')).toBe('<ol><li>a<ul><li>x<p>y</p></li></ul></li><li>b</li></ol>');
    expect(md('- a\n\n- b\n\nafter')).toBe('<ul><li>a</li><li>b</li></ul><p>after</p>');
    expect(md('text\n- item')).toBe('<p>text</p><ul><li>item</li></ul>');
  });

  it('block quotes and rules', () => {
    expect(md('> quoted *text*\n> - item')).toBe('<blockquote><p>quoted <em>text</em></p><ul><li>item</li></ul></blockquote>');
    expect(md('a\n\n---\n\n* * *')).toBe('<p>a</p><hr><hr>');
  });
});

describe('renderMarkdown: inline', () => {
  it('bold, italic, strikethrough', () => {
    expect(md('**bold** and __bold__, *it* and _it_, ~~gone~~')).toBe(
      '<p><strong>bold</strong> and <strong>bold</strong>, <em>it</em> and <em>it</em>, <del>gone</del></p>',
    );
    expect(md('***both***')).toBe('<p><strong><em>both</em></strong></p>');
    expect(md('**a *b* c**')).toBe('<p><strong>a <em>b</em> c</strong></p>');
    expect(md('*a **b** c*')).toBe('<p><em>a <strong>b</strong> c</em></p>');
  });

  it('leaves arithmetic and snake_case alone', () => {
    expect(md('2 * 3 * 4')).toBe('<p>2 * 3 * 4</p>');
    expect(md('snake_case_name and __init__x')).toBe('<p>snake_case_name and __init__x</p>');
  });

  it('inline code is literal', () => {
    expect(md('use `a **b** <c>` here')).toBe('<p>use <code>a **b** &lt;c&gt;</code> here</p>');
    expect(md('``has ` tick``')).toBe('<p><code>has ` tick</code></p>');
    expect(md('` padded `')).toBe('<p><code>padded</code></p>');
  });

  it('http(s) links only', () => {
    expect(md('[docs](https://example.com/a?b=1&c=2)')).toBe(
      '<p><a href="https://example.com/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">docs</a></p>',
    );
    expect(md('[**x**](http://e.org)')).toBe('<p><a href="http://e.org" target="_blank" rel="noopener noreferrer"><strong>x</strong></a></p>');
    expect(md('[rel](/v1/models)')).toBe('<p>[rel](/v1/models)</p>');
  });
});

describe('renderMarkdown: safety', () => {
  const attacks = [
    '<script>alert(1)</script>',
    '<img src=x onerror=alert(1)>',
    '<IMG SRC="javascript:alert(1)">',
    '<a href="javascript:alert(1)">x</a>',
    '[x](javascript:alert(1))',
    '[x](JavaScript:alert(1))',
    '[x]( javascript:alert(1))',
    '[x](data:text/html,<script>alert(1)</script>)',
    '[x](https://e.com"onmouseover="alert(1))',
    '[x](https://e.com\'onmouseover=\'alert(1))',
    '[x](https://e.com/<script>)',
    '[`x`](https://e.com/`y`)',
    '```"><script>alert(1)</script>\ncode\n```',
    '```js" onload="x\n```',
    '**<svg onload=alert(1)>**',
    '`<iframe src=//evil>`',
    '> <b onclick=alert(1)>q</b>',
    '- <style>*{display:none}</style>',
    '# <div>\n\u0000 0 \u00000\u0000',
    '&lt;script&gt; &amp; &#60;',
  ];

  it.each(attacks)('%j renders no markup of its own', (attack) => {
    const html = md(attack);
    expectSafeAndBalanced(html);
    expect(html).not.toMatch(/<(script|img|iframe|svg|style|div|b |a href="(?!https?:))/i);
    expect(html).not.toMatch(/<[^>]*\son\w+=/i);
  });

  it('keeps entities as text, not markup', () => {
    expect(md('&lt;b&gt;')).toBe('<p>&amp;lt;b&amp;gt;</p>');
  });

  it('random markdown-like input always renders to safe, balanced HTML', () => {
    const alphabet = ['*', '**', '_', '__', '~~', '`', '```', '[', ']', '(', ')', 'https://e.com', 'javascript:', '<', '>', '"', "'",
      '&', '#', '# ', '- ', '1. ', '> ', '\n', '\n\n', '  ', 'a', 'word', ' ', '\u0000', '0', '---'];
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let n = 0; n < 3000; n++) {
      const length = 1 + Math.floor(random() * 30);
      const text = Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
      expectSafeAndBalanced(md(text));
    }
  });
});

describe('renderMarkdown: streaming', () => {
  const doc = [
    '# Plan',
    '',
    'Here is **bold**, *italic*, `code` and a [link](https://example.com).',
    '',
    '1. first',
    '2. second with `x`',
    '',
    '```python',
    'print("<hi>")',
    '```',
    '',
    '> done',
  ].join('\n');

  it('every prefix renders to safe, balanced HTML', () => {
    for (let n = 0; n <= doc.length; n++) expectSafeAndBalanced(md(doc.slice(0, n)));
  });

  it('unclosed markers stay literal until closed; an open fence runs to the end', () => {
    expect(md('some **bol')).toBe('<p>some **bol</p>');
    expect(md('some **bold**')).toBe('<p>some <strong>bold</strong></p>');
    expect(md('a `co')).toBe('<p>a `co</p>');
    expect(md('```py\nx = 1\n')).toBe('<pre><code class="language-py">x = 1\n</code></pre>');
  });

  it('stays fast on pathological input', () => {
    const start = performance.now();
    md('*a '.repeat(3000) + '_b '.repeat(3000) + '`'.repeat(2000) + '['.repeat(2000));
    expect(performance.now() - start).toBeLessThan(2000);
  });
});

describe('renderMarkdown: self-contained (the page embeds its source)', () => {
  it('works when rebuilt from its own text in an empty scope', () => {
    const rebuilt = new Function(`return (${renderMarkdown.toString()});`)() as typeof renderMarkdown;
    const sample = '# t\n\n- **a** `b` [c](https://e.com)\n\n> q\n\n```\nx\n```';
    expect(rebuilt(sample)).toBe(md(sample));
  });
});
