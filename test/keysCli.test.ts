import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startChildServer } from './support/childServer.ts';
import type { ChildServer } from './support/childServer.ts';
import { api } from './support/harness.ts';

const directory = mkdtempSync(join(tmpdir(), 'llm-chat-keys-cli-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));
let child: ChildServer | undefined;
afterEach(async () => {
  await child?.stop('SIGKILL');
  child = undefined;
});

/** Runs `src/main.ts` with these arguments to its end. */
function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], { cwd: process.cwd(), timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const KEY = /llmc_[\w-]{43}/g;
const logLines = (output: string) => output.split('\n').filter((line) => line.startsWith('{'));

describe('the first key and --new-key', () => {
  it('with --auth keys and an empty store, start-up makes a key and prints it once with a ready link; it works; logs never carry it', async () => {
    const dataDir = join(directory, 'first');
    child = await startChildServer(['--auth', 'keys', '--store', 'sqlite', '--data-dir', dataDir]);
    const output = child.log();
    const printed = [...new Set(output.match(KEY) ?? [])];
    expect(printed).toHaveLength(1);
    const key = printed[0]!;
    expect(output).toContain(`${child.url}/#key=${key}`);
    for (const line of logLines(output)) expect(line).not.toContain(key);
    expect(logLines(output).some((line) => line.includes('no API key in the store'))).toBe(true);
    expect((await api(child.url, 'GET', '/api/sessions', undefined, { authorization: `Bearer ${key}` })).status).toBe(200);
    expect((await api(child.url, 'GET', '/api/sessions')).status).toBe(401);
    await child.stop('SIGTERM');

    // The next start finds the key in the store: nothing new is made or printed.
    child = await startChildServer(['--auth', 'keys', '--store', 'sqlite', '--data-dir', dataDir]);
    expect(child.log().match(KEY)).toBeNull();
    expect((await api(child.url, 'GET', '/api/sessions', undefined, { authorization: `Bearer ${key}` })).status).toBe(200);
  });

  it('--new-key NAME adds a key to the configured store, prints it and exits; the server then takes it', async () => {
    const dataDir = join(directory, 'new-key');
    const made = await run(['--new-key', 'ci robot', '--store', 'sqlite', '--data-dir', dataDir]);
    expect(made.code).toBe(0);
    const key = made.stdout.match(KEY)?.[0];
    expect(key).toBeDefined();
    expect(made.stdout).toContain('API key "ci robot"');
    expect(made.stdout).toContain(`/#key=${key}`);
    child = await startChildServer(['--auth', 'keys', '--store', 'sqlite', '--data-dir', dataDir]);
    expect(child.log().match(KEY)).toBeNull(); // a key exists: no "default" one
    expect((await api(child.url, 'GET', '/api/auth/me', undefined, { authorization: `Bearer ${key}` })).body).toMatchObject({ auth: 'keys', name: 'ci robot' });
  });

  it('refuses --new-key with a store that would forget it, and bad auth options, with exit code 2', async () => {
    const memory = await run(['--new-key', 'x', '--store', 'memory']);
    expect([memory.code, memory.stderr]).toEqual([2, expect.stringContaining('--new-key needs a store that outlives this command')]);
    expect((await run(['--new-key', '', '--store', 'memory'])).code).toBe(2);
    const auth = await run(['--auth', 'maybe']);
    expect([auth.code, auth.stderr]).toEqual([2, expect.stringContaining('--auth must be one of keys, none')]);
    const origins = await run(['--allowed-origins', 'https://ok.example,ftp://nope.example']);
    expect([origins.code, origins.stderr]).toEqual([2, expect.stringContaining('--allowed-origins')]);
  });

  it('--auth none on an address other hosts reach logs a warning; on loopback it does not', async () => {
    child = await startChildServer(['--auth', 'none', '--store', 'memory', '--host', '0.0.0.0']);
    expect(child.log()).toContain('--auth none on an address other hosts can reach');
    await child.stop('SIGTERM');
    child = await startChildServer(['--auth', 'none', '--store', 'memory']);
    expect(child.log()).not.toContain('--auth none on an address other hosts can reach');
  });
});
