import { describe, expect, it } from 'vitest';
import { prefersHtml } from './prefers-html.js';

describe('prefersHtml', () => {
  it('is true for what browsers send when navigating', () => {
    // Chromium and Firefox
    expect(prefersHtml('text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8')).toBe(true);
    expect(prefersHtml('text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8')).toBe(true);
  });

  it('is false for curl, API clients and no header', () => {
    expect(prefersHtml('*/*')).toBe(false);
    expect(prefersHtml('application/json')).toBe(false);
    expect(prefersHtml(null)).toBe(false);
    expect(prefersHtml('')).toBe(false);
  });

  it('follows the q values', () => {
    expect(prefersHtml('application/json, text/html;q=0.5')).toBe(false);
    expect(prefersHtml('application/json;q=0.5, text/html')).toBe(true);
    expect(prefersHtml('text/html;q=0')).toBe(false);
    expect(prefersHtml('TEXT/HTML ; Q=0.9')).toBe(true);
  });
});
