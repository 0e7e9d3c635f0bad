import { expect, test } from '@playwright/test';
import { createCompany, signIn, tenantUrl, uniqueSubdomain } from './helpers';

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('a company renamed: the admin lands at the new address signed in, and old links keep working for everyone', async ({ page, browser }) => {
  const old = uniqueSubdomain('ren');
  const renamed = uniqueSubdomain('new');
  createCompany('Renamed Co', old);
  const admin = `admin@${old}.test`;
  // Someone else signed in before the rename, in another browser.
  const other = await browser.newContext();
  const colleague = await other.newPage();
  await signIn(colleague, old, admin);

  await signIn(page, old, admin);
  await page.goto(tenantUrl(old, '/settings'));
  await page.getByLabel('Subdomain').fill(renamed);
  await page.getByRole('button', { name: 'Change the address' }).click();
  await expect(page).toHaveURL(new RegExp(`^${escape(tenantUrl(renamed, '/settings?address=changed'))}`));
  await expect(page.getByTestId('address-changed')).toBeVisible();
  await expect(page.locator('.who')).toHaveText(admin);
  await expect(page.getByTestId('primary-url')).toHaveText(tenantUrl(renamed, '/'));

  // The colleague follows an old link: the same page, at the new address,
  // still signed in.
  await colleague.goto(tenantUrl(old, '/users?from=old-link'));
  await expect(colleague).toHaveURL(tenantUrl(renamed, '/users?from=old-link'));
  await expect(colleague.locator('.who')).toHaveText(admin);
  await expect(colleague.getByRole('heading', { level: 1 })).toContainText('Users');
  await other.close();

  // Someone never signed in: the old sign-in page is the new one.
  const stranger = await browser.newContext();
  const visitor = await stranger.newPage();
  const response = await visitor.goto(tenantUrl(old, '/login?next=%2Fusers'));
  await expect(visitor).toHaveURL(tenantUrl(renamed, '/login?next=%2Fusers'));
  expect(response?.status()).toBe(200);
  await expect(visitor.getByRole('button', { name: 'Sign in' })).toBeVisible();
  await stranger.close();
});

test('a taken subdomain is refused on the settings page and the company keeps its address', async ({ page }) => {
  const mine = uniqueSubdomain('keep');
  const theirs = uniqueSubdomain('them');
  createCompany('Keeper', mine);
  createCompany('Other', theirs);
  await signIn(page, mine, `admin@${mine}.test`);
  await page.goto(tenantUrl(mine, '/settings'));
  await page.getByLabel('Subdomain').fill(theirs);
  await page.getByRole('button', { name: 'Change the address' }).click();
  await expect(page.getByTestId('subdomain-error')).toHaveText(`${theirs} is taken; choose another`);
  await expect(page).toHaveURL(new RegExp(`^${escape(tenantUrl(mine, '/settings'))}`));
  await expect(page.getByLabel('Subdomain')).toHaveValue(theirs);
});
