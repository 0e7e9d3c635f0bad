// Forms as plain HTML: with JavaScript disabled, and with JavaScript on but
// clicked before the WASM has arrived. Every post must end on a page that
// shows its outcome, never on a JSON body.
import { test, expect, type Page } from '@playwright/test';
import { createCompany, createSuperadmin, hydrated, PASSWORD, rootUrl, tenantUrl, uniqueSubdomain } from './helpers';
import { linkPath, waitForMail } from './mail';

async function expectNoJson(page: Page): Promise<void> {
  const body = (await page.locator('body').textContent()) ?? '';
  expect(body.trim().startsWith('{'), `a page, not JSON: ${body.slice(0, 200)}`).toBe(false);
}

async function signInPlain(page: Page, sub: string, password = PASSWORD): Promise<void> {
  await page.goto(tenantUrl(sub, '/login'));
  await page.getByLabel('Email').fill(`admin@${sub}.test`);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

test.describe('with JavaScript disabled', () => {
  test.use({ javaScriptEnabled: false });

  test('sign-in shows a wrong password on the form, then signs in', async ({ page }) => {
    const sub = uniqueSubdomain('plain');
    createCompany('Plain Inc', sub);
    await signInPlain(page, sub, 'wrong password!');
    await expectNoJson(page);
    await expect(page.getByTestId('login-error')).toHaveText('Wrong email or password.');
    // What was typed is kept, the password excepted.
    await expect(page.getByLabel('Email')).toHaveValue(`admin@${sub}.test`);
    await expect(page.getByLabel('Password')).toHaveValue('');
    await signInPlain(page, sub);
    await expectNoJson(page);
    await expect(page.getByTestId('me')).toHaveText(`admin@${sub}.test`);
  });

  test('the users page invites someone and refuses to demote the last admin', async ({ page }) => {
    const sub = uniqueSubdomain('plainusers');
    createCompany('Plain Users', sub);
    await signInPlain(page, sub);
    await page.goto(tenantUrl(sub, '/users'));
    const row = page.locator(`tr[data-email="admin@${sub}.test"]`);
    for (const button of ['Make member', 'Disable']) {
      await row.getByRole('button', { name: button }).click();
      await expectNoJson(page);
      await expect(page.getByTestId('users-error')).toHaveText('The company needs at least one active admin.');
      await expect(row).toContainText('admin');
    }
    // Remove asks first, on a page of its own.
    await row.getByRole('link', { name: 'Remove…' }).click();
    await expect(page.getByTestId('remove-who')).toContainText(`admin@${sub}.test`);
    await page.getByRole('button', { name: `Remove admin@${sub}.test` }).click();
    await expectNoJson(page);
    await expect(page.getByTestId('remove-error')).toHaveText('The company needs at least one active admin.');
    await page.getByRole('link', { name: 'Cancel' }).click();
    await expect(row).toContainText('admin');
    await page.getByLabel('Email').fill(`member@${sub}.test`);
    await page.getByRole('button', { name: 'Send invitation' }).click();
    await expectNoJson(page);
    const invited = page.locator(`tr[data-invited="member@${sub}.test"]`);
    await expect(invited).toContainText('member');
    await invited.getByRole('button', { name: 'Resend' }).click();
    await expectNoJson(page);
    await invited.getByRole('button', { name: 'Revoke' }).click();
    await expectNoJson(page);
    await expect(invited).toHaveCount(0);
  });

  test('an invitation is sent and accepted', async ({ page, browser }) => {
    const sub = uniqueSubdomain('plaininv');
    createCompany('Plain Invite', sub);
    await signInPlain(page, sub);
    await page.goto(tenantUrl(sub, '/users'));
    await page.getByLabel('Email').fill(`joiner@${sub}.test`);
    await page.getByLabel('Role').selectOption('admin');
    await page.getByRole('button', { name: 'Send invitation' }).click();
    await expectNoJson(page);
    const message = await waitForMail(`joiner@${sub}.test`, '/invite/');
    const context = await browser.newContext({ javaScriptEnabled: false });
    const joiner = await context.newPage();
    await joiner.goto(tenantUrl(sub, linkPath(message, '/invite/')));
    await joiner.getByLabel('Password (at least 10 characters)').fill('joiner password 1');
    await joiner.getByLabel('Password again').fill('joiner password 2');
    await joiner.getByRole('button', { name: 'Join and sign in' }).click();
    await expectNoJson(joiner);
    await expect(joiner.getByTestId('invite-error')).toHaveText('The two new passwords differ.');
    await joiner.getByLabel('Password (at least 10 characters)').fill('joiner password 1');
    await joiner.getByLabel('Password again').fill('joiner password 1');
    await joiner.getByRole('button', { name: 'Join and sign in' }).click();
    await expectNoJson(joiner);
    await expect(joiner.getByTestId('me')).toHaveText(`joiner@${sub}.test`);
    await context.close();
  });

  test('"Go to your company" leads to its sign-in page', async ({ page }) => {
    const sub = uniqueSubdomain('goto');
    createCompany('Goto Inc', sub);
    await page.goto(rootUrl('/'));
    await page.getByLabel("Your company's address").fill('not_valid');
    await page.getByRole('button', { name: 'Go to sign-in' }).click();
    await expect(page.getByTestId('go-error')).toContainText('Use only letters');
    await page.getByLabel("Your company's address").fill(sub.toUpperCase());
    await page.getByRole('button', { name: 'Go to sign-in' }).click();
    await expect(page).toHaveURL(tenantUrl(sub, '/login'));
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Sign in to Goto Inc');
  });

  test('the platform admin signs in, then pauses, resumes, deletes and undeletes a company', async ({ page }) => {
    const sub = uniqueSubdomain('plainpause');
    const admin = `plain-${sub}@platform.test`;
    createCompany('Plain Pause', sub);
    createSuperadmin(admin);
    await page.goto(rootUrl('/admin'));
    await page.getByLabel('Email').fill(admin);
    await page.getByLabel('Password').fill('wrong password!');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expectNoJson(page);
    await expect(page.getByRole('alert')).toHaveText('Wrong email or password.');
    await page.getByLabel('Email').fill(admin);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expectNoJson(page);
    // Other tests' companies share the list: search finds this one.
    await page.getByLabel('Search').fill(sub);
    await page.getByRole('button', { name: 'Show' }).click();
    await expect(page.getByTestId('tenant-count')).toHaveText('1 company · page 1 of 1');
    const row = page.locator(`tr[data-subdomain="${sub}"]`);
    await row.getByRole('button', { name: 'Pause' }).click();
    await expectNoJson(page);
    await expect(row.getByTestId('status')).toHaveText('paused');
    await row.getByRole('button', { name: 'Resume' }).click();
    await expectNoJson(page);
    await expect(row.getByTestId('status')).toHaveText('active');
    // Delete: refused without the typed subdomain, done with it: closed
    // for the grace period, with the day it goes, and undone by Undelete.
    await row.getByRole('button', { name: 'Delete' }).click();
    await expectNoJson(page);
    await expect(page.getByTestId('admin-error')).toHaveText(`Type ${sub} to confirm.`);
    await row.getByLabel('Type the subdomain to delete').fill(sub);
    await row.getByRole('button', { name: 'Delete' }).click();
    await expectNoJson(page);
    await expect(row.getByTestId('status')).toHaveText('deleting');
    await expect(row.getByTestId('purge-after')).toContainText('purged ');
    await row.getByRole('button', { name: 'Undelete' }).click();
    await expectNoJson(page);
    await expect(row.getByTestId('status')).toHaveText('active');
  });

  test('profile changes the password, then sign out', async ({ page }) => {
    const sub = uniqueSubdomain('plainprofile');
    createCompany('Plain Profile', sub);
    await signInPlain(page, sub);
    await page.goto(tenantUrl(sub, '/profile'));
    await page.getByLabel('Current password').fill('not my password');
    await page.getByLabel('New password (at least 10 characters)').fill('a new password 1');
    await page.getByLabel('New password again').fill('a new password 1');
    await page.getByRole('button', { name: 'Change password' }).click();
    await expectNoJson(page);
    await expect(page.getByRole('status')).toHaveText('The current password is wrong.');
    await page.getByLabel('Current password').fill(PASSWORD);
    await page.getByLabel('New password (at least 10 characters)').fill('a new password 1');
    await page.getByLabel('New password again').fill('a new password 1');
    await page.getByRole('button', { name: 'Change password' }).click();
    await expectNoJson(page);
    await expect(page.getByRole('status')).toHaveText('Password changed.');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expectNoJson(page);
    await expect(page).toHaveURL(/\/login$/);
    await signInPlain(page, sub, 'a new password 1');
    await expect(page.getByTestId('me')).toHaveText(`admin@${sub}.test`);
  });
});

test('a click before the WASM has arrived still ends on the page, with its outcome, which hydration keeps', async ({ page }) => {
  const sub = uniqueSubdomain('early');
  createCompany('Early Inc', sub);
  await signInPlain(page, sub);
  await expect(page.getByTestId('me')).toHaveText(`admin@${sub}.test`);
  // Hold the WASM back until the form has been submitted.
  let release!: () => void;
  const clicked = new Promise<void>((resolve) => (release = resolve));
  let held = 0;
  await page.route('**/pkg/*.wasm', async (route) => {
    held += 1;
    await clicked;
    await route.continue();
  });
  await page.goto(tenantUrl(sub, '/users'));
  const row = page.locator(`tr[data-email="admin@${sub}.test"]`);
  await row.getByRole('button', { name: 'Make member' }).click();
  await page.waitForURL(/__err=/, { waitUntil: 'commit' });
  expect(held, 'the users page asked for its WASM before the click').toBeGreaterThan(0);
  release();
  await expectNoJson(page);
  await expect(page.getByTestId('users-error')).toHaveText('The company needs at least one active admin.');
  // Once the island is live it still shows what the server rendered.
  await hydrated(page);
  await expect(page.getByTestId('users-error')).toHaveText('The company needs at least one active admin.');
  await expect(row).toContainText('admin');
});
