import { describe, expect, it } from 'vitest';
import type { Config } from '../src/config.ts';
import { helpText, loadConfig } from '../src/config.ts';

const configOf = (argv: string[], env: NodeJS.ProcessEnv = {}): Config => {
  const parsed = loadConfig(argv, env);
  if (parsed.help) throw new Error('unexpected --help');
  return parsed.config;
};

describe('edge options', () => {
  it('--ws-ping-ms and --max-buffered-total-bytes: documented defaults, env, flags win, 0 turns the ping off', () => {
    expect(configOf([])).toMatchObject({ wsPingMs: 30_000, maxBufferedTotalBytes: 256 * 1024 * 1024 });
    expect(configOf([], { WS_PING_MS: '5000', MAX_BUFFERED_TOTAL_BYTES: '1048576' })).toMatchObject({ wsPingMs: 5000, maxBufferedTotalBytes: 1_048_576 });
    expect(configOf(['--ws-ping-ms', '0', '--max-buffered-total-bytes', '2048'], { WS_PING_MS: '5000' })).toMatchObject({ wsPingMs: 0, maxBufferedTotalBytes: 2048 });
    expect(() => configOf(['--max-buffered-total-bytes', '0'])).toThrow(/--max-buffered-total-bytes must be at least 1/);
  });

  it('--replay-log-size, --replay-log-bytes, --flush-interval-ms, --shutdown-deadline-ms: documented defaults, env, flags win', () => {
    expect(configOf([])).toMatchObject({ replayLogSize: 1000, replayLogBytes: 1024 * 1024, flushIntervalMs: 500, shutdownDeadlineMs: 10_000 });
    const env = { REPLAY_LOG_SIZE: '50', REPLAY_LOG_BYTES: '4096', FLUSH_INTERVAL_MS: '100', SHUTDOWN_DEADLINE_MS: '2000' };
    expect(configOf([], env)).toMatchObject({ replayLogSize: 50, replayLogBytes: 4096, flushIntervalMs: 100, shutdownDeadlineMs: 2000 });
    expect(configOf(['--replay-log-bytes', '0', '--flush-interval-ms', '250', '--shutdown-deadline-ms', '1000'], env)).toMatchObject({
      replayLogBytes: 0,
      flushIntervalMs: 250,
      shutdownDeadlineMs: 1000,
    });
  });

  it('--help keeps a long flag apart from its text (the text goes to the next line)', () => {
    expect(helpText()).toMatch(/ {2}--max-buffered-total-bytes <n>\n {32}unsent bytes over all connections/);
    expect(helpText()).toMatch(/ {2}--ws-ping-ms <n> +WebSocket ping interval/);
  });
});
