// Islands: a page loads JavaScript and WASM only if it has an island.
import { test, expect, type Page } from '@playwright/test';
import { createCompany, hydrated, rootUrl, signIn, tenantUrl, uniqueSubdomain } from './helpers';

/** The `/pkg/` scripts and WASM a page asked for while loading. */
async function codeLoaded(page: Page, url: string): Promise<string[]> {
  const asked: string[] = [];
  const listen = (request: { url(): string }) => {
    const path = new URL(request.url()).pathname;
    if (path.startsWith('/pkg/') && /\.(js|wasm)$/.test(path)) asked.push(path);
  };
  page.on('request', listen);
  await page.goto(url);
  await page.waitForLoadState('networkidle');
  page.off('request', listen);
  return asked;
}

test('pages without islands ship no JavaScript or WASM; pages with them hydrate', async ({ page }) => {
  const errors: string[] = [];
  page.on('console', (m) => {
    // A 404 or 401 page's own status is logged as a failed load: not an error here.
    if ((m.type() === 'error' || m.type() === 'warning') && !m.text().startsWith('Failed to load resource')) {
      errors.push(m.text());
    }
  });
  page.on('pageerror', (e) => errors.push(e.message));
  const sub = uniqueSubdomain('isle');
  createCompany('Isle Inc', sub);
  for (const url of [tenantUrl(sub, '/login'), rootUrl('/no-such-page'), rootUrl('/admin'), rootUrl('/find')]) {
    expect(await codeLoaded(page, url), url).toEqual([]);
    // Nothing to load either (Leptos's two empty inline resource lists aside).
    await expect(page.locator('script[type="module"], link[rel="modulepreload"], link[as="fetch"]')).toHaveCount(0);
  }
  await signIn(page, sub, `admin@${sub}.test`);
  for (const path of ['/', '/profile', '/settings', '/audit']) {
    expect(await codeLoaded(page, tenantUrl(sub, path)), path).toEqual([]);
  }
  for (const url of [rootUrl('/'), rootUrl('/signup'), tenantUrl(sub, '/users')]) {
    const asked = await codeLoaded(page, url);
    expect(asked.some((p) => p.endsWith('.wasm')), url).toBe(true);
    expect(asked.some((p) => p.endsWith('.js')), url).toBe(true);
    await hydrated(page);
  }
  // Hydration found what the server rendered (no mismatch, no panic).
  expect(errors).toEqual([]);
});
