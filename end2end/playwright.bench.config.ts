// The page-weight benchmark (`make bench-pages`): the same server setup as
// the tests, one worker, against the release build.
import { defineConfig } from '@playwright/test';
import base from './playwright.config';

export default defineConfig({
  ...base,
  testDir: './bench',
  workers: 1,
  fullyParallel: false,
  timeout: 600_000,
});
