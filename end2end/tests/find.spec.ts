// "Find your company": the real message, read from the test SMTP server,
// and its sign-in link followed.
import { test, expect } from '@playwright/test';
import { PASSWORD, createCompany, rootUrl, uniqueSubdomain } from './helpers';
import { waitForMail } from './mail';

test('find your company by email, then follow the link to its sign-in', async ({ page }) => {
  const sub = uniqueSubdomain('findme');
  createCompany('Findable Inc', sub);
  const email = `admin@${sub}.test`;
  await page.goto(rootUrl('/'));
  await page.getByRole('link', { name: "Forgot your company's address? Find it by email." }).click();
  await page.getByLabel('Your email').fill(email);
  await page.getByRole('button', { name: 'Email me my companies' }).click();
  await expect(page.getByTestId('find-sent')).toContainText('on its way');

  const message = await waitForMail(email, 'Your companies on Enclave');
  const link = message.match(/http:\/\/[a-z0-9-]+\.localhost:\d+\/login/);
  expect(link, message).not.toBeNull();
  expect(message).toContain('Findable Inc');
  await page.goto((link as RegExpMatchArray)[0]);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('company-name')).toHaveText('Findable Inc');
});
