import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
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

/** Creates a company through `tenant create`, the real provisioning path. */
export function createCompany(name: string, subdomain: string): void {
  cli(
    ['tenant', 'create', '--name', name, '--subdomain', subdomain, '--admin-email', `admin@${subdomain}.test`, '--admin-password-stdin'],
    'correct horse battery staple\n',
  );
}
