import type { KeyRing } from './actors/keyRing.ts';
import type { Logger } from './domain/ports.ts';

/** 0.0.0.0 and :: are not addresses a browser can open. */
export function browsableBase(address: { host: string; port: number; url: string }): string {
  return /^(0\.0\.0\.0|::)$/.test(address.host) ? `http://localhost:${address.port}` : address.url;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Prints a new key on stdout, never through the logger: the log (stderr,
 * often shipped elsewhere) only ever gets the key's id.
 */
export function printKey(out: NodeJS.WritableStream, key: string, view: { id: string; name: string }, base: string | undefined): void {
  out.write(`llm-chat: API key "${view.name}" (${view.id}) created; it is shown only this once:\n  ${key}\n`);
  if (base !== undefined) out.write(`llm-chat: chat page, signed in with it: ${base}/#key=${key}\n`);
}

/** With `--auth keys` and no key in the store, start-up makes one (named "default") and prints it once. */
export async function ensureFirstKey(ring: KeyRing, logger: Logger, base: string, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  if (await ring.hasActive()) return;
  const { key, view } = await ring.create({ name: 'default' });
  printKey(out, key, view, base);
  logger.info({ keyId: view.id, name: view.name }, 'no API key in the store: made one, printed once on stdout (make more with --new-key NAME or POST /admin/keys)');
}
