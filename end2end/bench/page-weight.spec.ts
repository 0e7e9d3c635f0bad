// Page weight and time to interactive under a slow network and CPU, as
// issue 12 measured them: 562 ms round trip, 1.6 Mbit/s down, 750 kbit/s
// up, CPU 4x slower (Chromium DevTools Protocol). Prints one Markdown
// table; run it with `make bench-pages` (a release build).
import { test, type BrowserContext } from '@playwright/test';
import { cli, createCompany, PASSWORD, rootUrl, tenantUrl, uniqueSubdomain } from '../tests/helpers';

type Row = { page: string; html: number; code: number; islands: number; visible: number; interactive: number | null };

async function measure(context: BrowserContext, name: string, url: string): Promise<Row> {
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 562,
    downloadThroughput: 1_600_000 / 8,
    uploadThroughput: 750_000 / 8,
  });
  await cdp.send('Emulation.setCPUThrottlingRate', { rate: 4 });
  const kinds = new Map<string, string>();
  let html = 0;
  let code = 0;
  // The page itself, and the app's JS and WASM (`/pkg/*.js`, `/pkg/*.wasm`; not CSS, not the icon).
  cdp.on('Network.responseReceived', (e) => {
    const path = new URL(e.response.url).pathname;
    if (e.type === 'Document') kinds.set(e.requestId, 'html');
    else if (path.startsWith('/pkg/') && /\.(js|wasm)$/.test(path)) kinds.set(e.requestId, 'code');
  });
  cdp.on('Network.loadingFinished', (e) => {
    const kind = kinds.get(e.requestId);
    if (kind === 'html') html += e.encodedDataLength;
    else if (kind === 'code') code += e.encodedDataLength;
  });
  await page.addInitScript(() => {
    const w = window as unknown as { __hydratedAt?: number };
    const mark = () => {
      if (w.__hydratedAt === undefined && document.documentElement?.hasAttribute('data-hydrated')) {
        w.__hydratedAt = performance.now();
      }
    };
    new MutationObserver(mark).observe(document, { attributes: true, subtree: true, attributeFilter: ['data-hydrated'] });
  });
  await page.goto(url, { waitUntil: 'load' });
  const islands = await page.locator('leptos-island').count();
  let interactive: number | null = null;
  if (islands === 0) {
    // Plain HTML: its links and forms work once it is parsed.
    interactive = await page.evaluate(
      () => (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).domContentLoadedEventEnd,
    );
  } else {
    try {
      await page.waitForFunction(() => (window as unknown as { __hydratedAt?: number }).__hydratedAt !== undefined, null, { timeout: 60_000 });
      interactive = await page.evaluate(() => (window as unknown as { __hydratedAt: number }).__hydratedAt);
    } catch {
      interactive = null;
    }
  }
  await page.waitForLoadState('networkidle');
  const visible = await page.evaluate(
    () => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1,
  );
  await page.close();
  return { page: name, html, code, islands, visible, interactive };
}

test('page weight and time to interactive, throttled', async ({ browser }) => {
  const sub = uniqueSubdomain('weigh');
  createCompany('Weigh Inc', sub);
  cli(['tenant', 'add-user', sub, '--email', `member@${sub}.test`, '--password-stdin'], 'member password 1\n');
  const anonymous = await browser.newContext();
  const signedIn = await browser.newContext();
  // Sign in unthrottled, through the form, to carry the session cookie.
  const login = await signedIn.newPage();
  await login.goto(tenantUrl(sub, '/login'));
  await login.getByLabel('Email').fill(`admin@${sub}.test`);
  await login.getByLabel('Password').fill(PASSWORD);
  await login.getByRole('button', { name: 'Sign in' }).click();
  await login.getByTestId('me').waitFor();
  await login.close();

  const rows: Row[] = [];
  for (const [name, url, context] of [
    ['landing', rootUrl('/'), anonymous],
    ['signup', rootUrl('/signup'), anonymous],
    ['sign-in', tenantUrl(sub, '/login'), anonymous],
    ['404', rootUrl('/no-such-page'), anonymous],
    ['dashboard', tenantUrl(sub, '/'), signedIn],
    ['profile', tenantUrl(sub, '/profile'), signedIn],
    ['users', tenantUrl(sub, '/users'), signedIn],
    ['platform admin', rootUrl('/admin'), anonymous],
  ] as const) {
    rows.push(await measure(context, name, url));
  }
  const kb = (n: number) => (n / 1024).toFixed(1);
  const s = (ms: number | null) => (ms === null ? 'never' : (ms / 1000).toFixed(2));
  const lines = [
    '| page | islands | HTML KB | JS + WASM KB on the wire | visible s | interactive s |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.page} | ${r.islands} | ${kb(r.html)} | ${kb(r.code)} | ${s(r.visible)} | ${s(r.interactive)} |`),
  ];
  console.log(`\n${lines.join('\n')}\n`);
  await anonymous.close();
  await signedIn.close();
});
