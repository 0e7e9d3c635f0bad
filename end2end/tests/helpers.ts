import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { expect, type Page } from '@playwright/test';
import { serverEnv } from '../playwright.config';

export const port = Number(new URL(`http://${serverEnv.ENCLAVE_LISTEN}`).port);

/** A subdomain no other test uses. */
export function uniqueSubdomain(prefix = 'co'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export function tenantUrl(subdomain: string, path = '/'): string {
  return `http://${subdomain}.localhost:${port}${path}`;
}

/** Runs the server binary's CLI against the test server's data directory. */
export function cli(args: string[], input?: string): string {
  const bin = process.env.SERVER_BIN ?? `${process.env.HOME}/.cache/enclave/target/debug/server`;
  return execFileSync(bin, args, {
    env: { ...process.env, ...serverEnv } as NodeJS.ProcessEnv,
    input,
    encoding: 'utf8',
  });
}

export const PASSWORD = 'correct horse battery staple';

export function rootUrl(path = '/'): string {
  return `http://localhost:${port}${path}`;
}

/** Creates a company through `tenant create`, the real provisioning path;
 * its admin is `admin@<subdomain>.test` with PASSWORD. */
export function createCompany(name: string, subdomain: string): void {
  cli(
    ['tenant', 'create', '--name', name, '--subdomain', subdomain, '--admin-email', `admin@${subdomain}.test`, '--admin-password-stdin'],
    `${PASSWORD}\n`,
  );
}

/** A platform admin, through `superadmin create`. */
export function createSuperadmin(email: string): void {
  cli(['superadmin', 'create', '--email', email, '--password-stdin'], `${PASSWORD}\n`);
}

/** Signs in on a company's sign-in page and waits for the dashboard. */
export async function signIn(page: Page, subdomain: string, email: string, password = PASSWORD): Promise<void> {
  await page.goto(tenantUrl(subdomain, '/login'));
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('me')).toHaveText(email);
}

/** Waits until the page's islands are live (the WASM marks `<html data-hydrated>`). */
export async function hydrated(page: Page): Promise<void> {
  await page.locator('html[data-hydrated]').waitFor({ state: 'attached' });
}
