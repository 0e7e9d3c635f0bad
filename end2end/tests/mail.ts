// The messages Enclave sent, as the test SMTP server delivered them.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from '@playwright/test';
import { mailDir } from '../playwright.config';

function messages(): string[] {
  const dir = path.join(mailDir ?? '', 'new');
  let files: string[] = [];
  try {
    files = readdirSync(dir).sort();
  } catch {
    return [];
  }
  // Quoted-printable soft line breaks undone, enough to read links.
  return files.map((f) => readFileSync(path.join(dir, f), 'utf8').replace(/=\r?\n/g, '').replace(/=3D/g, '='));
}

function toHeader(message: string): string {
  const head = message.split(/\r?\n\r?\n/)[0];
  return head.split(/\r?\n/).filter((l) => /^to:/i.test(l)).join(' ');
}

/** Waits for a message to `to` whose text contains `needle`; returns it. */
export async function waitForMail(to: string, needle: string): Promise<string> {
  let found: string | undefined;
  await expect
    .poll(
      () => {
        found = messages().find((m) => toHeader(m).includes(to) && m.includes(needle));
        return found !== undefined;
      },
      { timeout: 15_000, message: `a message to ${to} containing ${needle}` },
    )
    .toBe(true);
  return found as string;
}

/** The first `<path><64 hex>` link of a message, as a path. */
export function linkPath(message: string, prefix: string): string {
  const m = message.match(new RegExp(`${prefix.replace(/\//g, '\\/')}[0-9a-f]{64}`));
  expect(m, `a ${prefix} link`).not.toBeNull();
  return (m as RegExpMatchArray)[0];
}
