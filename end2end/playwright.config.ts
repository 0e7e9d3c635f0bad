import { defineConfig } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

// One server for the whole run, on its own SQLite data directory. Workers
// re-read this file, so the directory is fixed once through the environment.
process.env.E2E_DATA_DIR ??= path.join(__dirname, '.data', `run-${Date.now()}`);
const port = Number(process.env.E2E_PORT ?? 3100);
// A real SMTP server (Debian's python3-aiosmtpd) that delivers into a
// Maildir the tests read.
process.env.E2E_MAIL_DIR ??= path.join(__dirname, '.data', `mail-${Date.now()}`);
const smtpPort = Number(process.env.E2E_SMTP_PORT ?? 3125);
export const mailDir = process.env.E2E_MAIL_DIR;
mkdirSync(path.dirname(mailDir), { recursive: true });
const serverBin =
  process.env.SERVER_BIN ?? path.join(process.env.HOME ?? '', '.cache/enclave/target/debug/server');

export const serverEnv = {
  ENCLAVE_DATA_DIR: process.env.E2E_DATA_DIR,
  ENCLAVE_LISTEN: `127.0.0.1:${port}`,
  ENCLAVE_BASE_DOMAIN: 'localhost',
  ENCLAVE_SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
  LEPTOS_SITE_ROOT: path.join(__dirname, '..', 'target', 'site'),
};

export default defineConfig({
  testDir: './tests',
  timeout: 30_000,
  fullyParallel: true,
  workers: 2,
  reporter: [['list']],
  use: {
    // Chromium resolves *.localhost to loopback by itself.
    baseURL: `http://localhost:${port}`,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    },
  },
  webServer: [
  {
    command: `/usr/bin/python3 -m aiosmtpd -n -l 127.0.0.1:${smtpPort} -c aiosmtpd.handlers.Mailbox ${mailDir}`,
    port: smtpPort,
    reuseExistingServer: false,
    timeout: 30_000,
  },
  {
    command: `${serverBin} serve`,
    // Node does not resolve *.localhost: probe the IP (it answers 400, which counts as up).
    url: `http://127.0.0.1:${port}/healthz`,
    env: serverEnv as Record<string, string>,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'pipe',
  },
  ],
});
