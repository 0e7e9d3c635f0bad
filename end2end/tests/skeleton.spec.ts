import { test, expect } from '@playwright/test';
import { createCompany, tenantUrl, uniqueSubdomain } from './helpers';

test('the landing page hydrates: typing updates the address preview', async ({ page }) => {
  // The Content-Security-Policy lets the hydration scripts run, and nothing else is refused.
  const refused: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) refused.push(m.text());
  });
  await page.goto('/');
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Every company gets its own database.');
  const preview = page.getByTestId('subdomain-preview');
  await expect(preview).toContainText('your-company.localhost');
  // Only the hydrated WASM reacts to typing; retry until hydration is done.
  await expect(async () => {
    await page.getByLabel('Try an address').fill('');
    await page.getByLabel('Try an address').pressSequentially('Globex');
    await expect(preview).toContainText('globex.localhost', { timeout: 500 });
  }).toPass({ timeout: 15_000 });
  await page.getByLabel('Try an address').fill('ab');
  await expect(page.getByTestId('subdomain-error')).toHaveText('A subdomain needs at least 3 characters.');
  expect(refused).toEqual([]);
});

test('a known company has its page on its subdomain', async ({ page }) => {
  const sub = uniqueSubdomain('acme');
  createCompany('Acme Corp', sub);
  // Signed out, the company's address leads to its own sign-in page.
  const res = await page.goto(tenantUrl(sub));
  expect(res?.status()).toBe(200);
  expect(page.url()).toBe(tenantUrl(sub, '/login?next=/'));
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Sign in to Acme Corp');
});

test('an unknown subdomain shows the 404 page', async ({ page }) => {
  const res = await page.goto(tenantUrl(uniqueSubdomain('nobody')));
  expect(res?.status()).toBe(404);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('No such workspace');
  await expect(page.getByRole('link', { name: 'Create a company' })).toBeVisible();
});
