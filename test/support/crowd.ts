import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLIENT = fileURLToPath(new URL('./crowdClient.ts', import.meta.url));

/** `count` WebSockets opened at the same moment by another process (one address, 127.0.0.1); what each got first, tallied. */
export function crowd(url: string, count: number, headers: Record<string, string> = {}): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', CLIENT, url, String(count), JSON.stringify(headers)], { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`crowd failed: ${String(error)} ${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, number>);
    });
  });
}
