// "Forgot your password?": the real message, read from the test SMTP
// server, and its link followed, with JavaScript and without.
import { test, expect } from '@playwright/test';
import { createCompany, tenantUrl, uniqueSubdomain } from './helpers';
import { linkPath, waitForMail } from './mail';

const NEW_PASSWORD = 'a brand new password';

for (const javaScriptEnabled of [true, false]) {
  test.describe(javaScriptEnabled ? 'with JavaScript' : 'with JavaScript disabled', () => {
    test.use({ javaScriptEnabled });

    test('a forgotten password is reset through the emailed link', async ({ page }) => {
      const sub = uniqueSubdomain(javaScriptEnabled ? 'reset' : 'resetplain');
      const email = `admin@${sub}.test`;
      createCompany('Reset Inc', sub);
      await page.goto(tenantUrl(sub, '/login'));
      await page.getByRole('link', { name: 'Forgot your password?' }).click();
      await expect(page).toHaveURL(/\/password\/forgot$/);
      await page.getByLabel('Email').fill(email);
      await page.getByRole('button', { name: 'Send me a link' }).click();
      await expect(page.getByTestId('forgot-sent')).toContainText('on its way');

      const message = await waitForMail(email, '/password/reset/');
      expect(message).toContain('Reset your password for Reset Inc');
      expect(message).toContain('text/html');
      await page.goto(tenantUrl(sub, linkPath(message, '/password/reset/')));
      await page.getByLabel('New password (at least 10 characters)').fill(NEW_PASSWORD);
      await page.getByLabel('New password again').fill(NEW_PASSWORD);
      await page.getByRole('button', { name: 'Set password and sign in' }).click();
      await expect(page.getByTestId('me')).toHaveText(email);

      // The link is spent.
      await page.goto(tenantUrl(sub, linkPath(message, '/password/reset/')));
      await expect(page.getByTestId('reset-error')).toHaveText('This link has expired or was already used.');
    });
  });
}
