import { test, expect } from '@playwright/test';
import {
  PASSWORD,
  cli,
  createCompany,
  createSuperadmin,
  hydrated,
  rootUrl,
  signIn,
  tenantUrl,
  uniqueSubdomain,
} from './helpers';
import { linkPath, waitForMail } from './mail';

async function fillSignup(page: import('@playwright/test').Page, sub: string, email: string) {
  await page.getByLabel('Company name').fill('Initech');
  await page.getByLabel('Address').fill(sub);
  await page.getByLabel('Your email').fill(email);
}

/** On the link's page: the password, chosen once the email is proven. */
async function choosePassword(page: import('@playwright/test').Page) {
  await page.getByLabel('Choose a password (at least 10 characters)').fill(PASSWORD);
  await page.getByLabel('Password again').fill(PASSWORD);
}

test('signup mails a link; confirming it lands the new admin signed in on the dashboard', async ({ page }) => {
  const sub = uniqueSubdomain('init');
  await page.goto(rootUrl('/signup'));
  await fillSignup(page, sub, `boss@${sub}.test`);
  await page.getByRole('button', { name: 'Create company' }).click();
  await expect(page.getByTestId('signup-sent')).toContainText('Check your inbox');
  // Nothing exists, and no password is chosen, until the email is confirmed.
  const message = await waitForMail(`boss@${sub}.test`, '/verify/');
  expect(message).toContain('Confirm your email to create Initech');
  await page.goto(rootUrl(linkPath(message, '/verify/')));
  await expect(page.getByTestId('pending')).toContainText(`${sub}.localhost`);
  await choosePassword(page);
  await page.getByRole('button', { name: 'Create my company' }).click();
  await page.waitForURL(tenantUrl(sub));
  await expect(page.getByTestId('company-name')).toHaveText('Initech');
  await expect(page.getByTestId('me')).toHaveText(`boss@${sub}.test`);
  await expect(page.getByTestId('audit')).toContainText("Company 'Initech' created");
});

test('signup and its confirmation work with JavaScript disabled', async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  const sub = uniqueSubdomain('nojs');
  await page.goto(rootUrl('/signup'));
  await fillSignup(page, sub, `boss@${sub}.test`);
  await page.getByRole('button', { name: 'Create company' }).click();
  await expect(page.getByTestId('signup-sent')).toContainText('Check your inbox');
  const message = await waitForMail(`boss@${sub}.test`, '/verify/');
  await page.goto(rootUrl(linkPath(message, '/verify/')));
  // A refused password comes back to the page, the link unspent.
  await page.getByLabel('Choose a password (at least 10 characters)').fill(PASSWORD);
  await page.getByLabel('Password again').fill('something else entirely');
  await page.getByRole('button', { name: 'Create my company' }).click();
  await expect(page.getByTestId('confirm-error')).toHaveText('The two passwords differ.');
  await choosePassword(page);
  await page.getByRole('button', { name: 'Create my company' }).click();
  await page.waitForURL(tenantUrl(sub));
  await expect(page.getByTestId('me')).toHaveText(`boss@${sub}.test`);
  // The link is spent.
  await page.goto(rootUrl(linkPath(message, '/verify/')));
  await expect(page.getByTestId('verify-error')).toContainText('expired or was already used');
  await context.close();
});

test('the live subdomain check says taken for an existing company', async ({ page }) => {
  const sub = uniqueSubdomain('taken');
  createCompany('Taken Inc', sub);
  await page.goto(rootUrl('/signup'));
  const status = page.getByTestId('subdomain-status');
  // Typing works only once hydrated: retry until the live check answers.
  await expect(async () => {
    await page.getByLabel('Address').fill('');
    await page.getByLabel('Address').pressSequentially(sub);
    await expect(status).toHaveText('Taken: choose another', { timeout: 1500 });
  }).toPass({ timeout: 15_000 });
  await page.getByLabel('Address').fill('');
  await page.getByLabel('Address').pressSequentially('ab');
  await expect(status).toHaveText('A subdomain needs at least 3 characters.');
  await page.getByLabel('Address').fill('');
  await page.getByLabel('Address').pressSequentially(uniqueSubdomain('free'));
  await expect(status).toHaveText('Available');
});

test('a taken subdomain keeps the form filled in', async ({ page }) => {
  const sub = uniqueSubdomain('dup');
  createCompany('Dup Inc', sub);
  await page.goto(rootUrl('/signup'));
  await page.waitForLoadState('networkidle');
  await fillSignup(page, sub, `other@${sub}.test`);
  await page.getByRole('button', { name: 'Create company' }).click();
  await expect(page.getByTestId('subdomain-error')).toHaveText(`The subdomain '${sub}' is taken.`);
  await expect(page.getByLabel('Company name')).toHaveValue('Initech');
  await expect(page.getByLabel('Your email')).toHaveValue(`other@${sub}.test`);
});

test('sign out, then sign in again', async ({ page }) => {
  const sub = uniqueSubdomain('io');
  createCompany('In Out', sub);
  await signIn(page, sub, `admin@${sub}.test`);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(tenantUrl(sub, '/login'));
  await page.goto(tenantUrl(sub, '/users'));
  await page.waitForURL(tenantUrl(sub, '/login?next=/users'));
  await page.getByLabel('Email').fill(`admin@${sub}.test`);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  // Back where they were going.
  await page.waitForURL(tenantUrl(sub, '/users'));
  await expect(page.getByRole('heading', { name: 'Users' })).toBeVisible();
});

test('a wrong password is refused with a message', async ({ page }) => {
  const sub = uniqueSubdomain('wrong');
  createCompany('Wrong Inc', sub);
  await page.goto(tenantUrl(sub, '/login'));
  await page.waitForLoadState('networkidle');
  await page.getByLabel('Email').fill(`admin@${sub}.test`);
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('login-error')).toHaveText('Wrong email or password.');
  await expect(page.getByLabel('Email')).toHaveValue(`admin@${sub}.test`);
  await expect(page.getByLabel('Password')).toHaveValue('');
});

test('an admin invites a member, who joins from the email and is refused the admin pages', async ({ page, browser }) => {
  const sub = uniqueSubdomain('team');
  createCompany('Team Inc', sub);
  await signIn(page, sub, `admin@${sub}.test`);
  await page.getByRole('link', { name: 'Users' }).click();
  await page.getByLabel('Email').fill(`member@${sub}.test`);
  await page.getByRole('button', { name: 'Send invitation' }).click();
  await expect(page.locator(`tr[data-invited="member@${sub}.test"]`)).toContainText('member');

  const message = await waitForMail(`member@${sub}.test`, '/invite/');
  expect(message).toContain('You are invited to join Team Inc on Enclave');
  const context = await browser.newContext();
  const member = await context.newPage();
  await member.goto(tenantUrl(sub, linkPath(message, '/invite/')));
  await expect(member.getByTestId('invitee')).toContainText(`member@${sub}.test`);
  await member.getByLabel('Password (at least 10 characters)').fill('member password 1');
  await member.getByLabel('Password again').fill('member password 1');
  await member.getByRole('button', { name: 'Join and sign in' }).click();
  await expect(member.getByTestId('me')).toHaveText(`member@${sub}.test`);
  await expect(member.getByRole('link', { name: 'Users' })).toHaveCount(0);
  const res = await member.goto(tenantUrl(sub, '/users'));
  expect(res?.status()).toBe(403);
  await expect(member.getByRole('heading', { level: 1 })).toHaveText('Admins only');
  await context.close();

  // The admin sees them as a user now, no longer as invited.
  await page.reload();
  await expect(page.locator(`tr[data-email="member@${sub}.test"]`)).toContainText('member');
  await expect(page.locator(`tr[data-invited="member@${sub}.test"]`)).toHaveCount(0);
});

test('the last admin cannot demote themself', async ({ page }) => {
  const sub = uniqueSubdomain('solo');
  createCompany('Solo Inc', sub);
  await signIn(page, sub, `admin@${sub}.test`);
  await page.goto(tenantUrl(sub, '/users'));
  const row = page.locator(`tr[data-email="admin@${sub}.test"]`);
  await row.getByRole('button', { name: 'Make member' }).click();
  await expect(page.getByTestId('users-error')).toHaveText('The company needs at least one active admin.');
  await expect(row).toContainText('admin');
});

test("a session cookie copied to another company's host is signed out there", async ({ page }) => {
  const a = uniqueSubdomain('alpha');
  const b = uniqueSubdomain('beta');
  createCompany('Alpha', a);
  createCompany('Beta', b);
  await signIn(page, a, `admin@${a}.test`);
  const cookies = await page.context().cookies(tenantUrl(a));
  const session = cookies.find((c) => c.name === 'enclave_session');
  expect(session).toBeTruthy();
  await page.context().addCookies([{ ...session!, domain: `${b}.localhost` }]);
  await page.goto(tenantUrl(b));
  await page.waitForURL(tenantUrl(b, '/login?next=/'));
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Sign in to Beta');
});

test('a paused company shows the paused page, and resumes', async ({ page, browser }) => {
  const sub = uniqueSubdomain('pause');
  const admin = `root-${sub}@platform.test`;
  createCompany('Pausable', sub);
  createSuperadmin(admin);
  await page.goto(rootUrl('/admin'));
  await page.getByLabel('Email').fill(admin);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Companies' })).toBeVisible();
  // Other tests' companies share the list: search finds this one.
  await page.goto(rootUrl(`/admin?q=${sub}`));
  const row = page.locator(`tr[data-subdomain="${sub}"]`);
  await expect(row.getByTestId('status')).toHaveText('active');
  await row.getByRole('button', { name: 'Pause' }).click();
  await expect(row.getByTestId('status')).toHaveText('paused');

  const visitor = await browser.newPage();
  const res = await visitor.goto(tenantUrl(sub, '/login'));
  expect(res?.status()).toBe(503);
  await expect(visitor.getByRole('heading', { level: 1 })).toHaveText('This workspace is paused');

  await row.getByRole('button', { name: 'Resume' }).click();
  await expect(row.getByTestId('status')).toHaveText('active');
  const again = await visitor.goto(tenantUrl(sub, '/login'));
  expect(again?.status()).toBe(200);
  await visitor.close();
});

test('"Sign out" stays on one line at 1200 px', async ({ page }) => {
  await page.setViewportSize({ width: 1200, height: 800 });
  const sub = uniqueSubdomain('wide');
  createCompany('Wide Inc', sub);
  await signIn(page, sub, `admin@${sub}.test`);
  const lines = await page.getByRole('button', { name: 'Sign out' }).evaluate((button) => {
    const range = document.createRange();
    range.selectNodeContents(button);
    return range.getClientRects().length;
  });
  expect(lines).toBe(1);
});

test('an admin renames the company and reads it in the activity log', async ({ page }) => {
  const sub = uniqueSubdomain('rename');
  createCompany('Old Name', sub);
  await signIn(page, sub, `admin@${sub}.test`);
  await page.getByRole('link', { name: 'Settings' }).click();
  await page.getByLabel('Company name').fill('New Name');
  await page.getByRole('button', { name: 'Rename' }).click();
  await expect(page.getByTestId('renamed')).toBeVisible();
  await expect(page.getByTestId('company-name')).toHaveText('New Name');
  await page.getByRole('link', { name: 'Activity' }).click();
  await expect(page.getByTestId('audit')).toContainText("Renamed the company from 'Old Name' to 'New Name'");
});

test('removing a user asks first, in the row, then removes them', async ({ page }) => {
  const sub = uniqueSubdomain('remove');
  createCompany('Remove Inc', sub);
  cli(['tenant', 'add-user', sub, '--email', `leaver@${sub}.test`, '--password-stdin'], 'leaver password 1\n');
  await signIn(page, sub, `admin@${sub}.test`);
  await page.goto(tenantUrl(sub, '/users'));
  await hydrated(page);
  // Marks this page: a page load would lose it.
  await page.evaluate(() => ((window as unknown as { samePage: boolean }).samePage = true));
  const row = page.locator(`tr[data-email="leaver@${sub}.test"]`);
  // The island asks in the row (without it, Remove… leads to a page: nojs.spec.ts).
  await row.getByRole('link', { name: 'Remove…' }).click();
  await expect(row.getByTestId('remove-confirm')).toContainText(`Remove leaver@${sub}.test?`);
  await expect(page).toHaveURL(tenantUrl(sub, '/users'));
  // Cancel changes nothing.
  await row.getByRole('button', { name: 'Cancel' }).click();
  await expect(row.getByTestId('remove-confirm')).toHaveCount(0);
  await expect(row).toContainText('member');
  await row.getByRole('link', { name: 'Remove…' }).click();
  await row.getByRole('button', { name: `Remove leaver@${sub}.test` }).click();
  await expect(row).toHaveCount(0);
  await expect(page.locator(`tr[data-email="admin@${sub}.test"]`)).toBeVisible();
  await expect(page).toHaveURL(tenantUrl(sub, '/users'));
  // All of it in place, on the same page.
  expect(await page.evaluate(() => (window as unknown as { samePage?: boolean }).samePage)).toBe(true);
  // Gone on the server too, not only from the table.
  await page.reload();
  await expect(page.locator(`tr[data-email="admin@${sub}.test"]`)).toBeVisible();
  await expect(row).toHaveCount(0);
});
