import { defineConfig } from '@playwright/test';
import path from 'node:path';

// One server for the whole run, on its own SQLite data directory. Workers
// re-read this file, so the directory is fixed once through the environment.
process.env.E2E_DATA_DIR ??= path.join(__dirname, '.data', `run-${Date.now()}`);
const port = Number(process.env.E2E_PORT ?? 3100);
const serverBin =
  process.env.SERVER_BIN ?? path.join(process.env.HOME ?? '', '.cache/enclave/target/debug/server');

export const serverEnv = {
  ENCLAVE_DATA_DIR: process.env.E2E_DATA_DIR,
  ENCLAVE_LISTEN: `127.0.0.1:${port}`,
  ENCLAVE_BASE_DOMAIN: 'localhost',
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
  webServer: {
    command: `${serverBin} serve`,
    // Node does not resolve *.localhost: probe the IP (it answers 400, which counts as up).
    url: `http://127.0.0.1:${port}/healthz`,
    env: serverEnv as Record<string, string>,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'pipe',
  },
});
