/** Resolves after `ms` of real time. */
export const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` every 20 ms until it holds or `timeoutMs` passed; the caller asserts what it then sees. */
export async function eventually(probe: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe() && Date.now() < deadline) await wait(20);
}
