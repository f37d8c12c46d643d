import { pino } from 'pino';
import type { DestinationStream, Logger as Pino } from 'pino';
import pretty from 'pino-pretty';
import type { Logger } from '../domain/ports.ts';
import { redactFields } from './logRedaction.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export type LogFormat = 'auto' | 'json' | 'pretty';

export interface PinoLoggerOptions {
  level?: LogLevel;
  /** `auto` (default): pretty when stderr is a terminal, JSON lines otherwise. */
  format?: LogFormat;
  /** Where lines go (default stderr); tests pass a stream to read them. */
  destination?: DestinationStream;
}

/**
 * The Logger port on pino: one JSON object per line with `time` (ISO),
 * `level` (its name) and `msg`. `child` binds fields (a request or connection
 * id) to every line written through it. Session ids are cut short on every
 * line (see logRedaction.ts).
 */
export function createPinoLogger(options: PinoLoggerOptions = {}): Logger {
  const format = options.format ?? 'auto';
  const prettyOutput = format === 'pretty' || (format === 'auto' && options.destination === undefined && process.stderr.isTTY === true);
  const destination =
    options.destination ??
    (prettyOutput
      ? pretty({ destination: 2, colorize: process.stderr.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
      : pino.destination({ dest: 2, sync: true }));
  const root = pino(
    {
      level: options.level ?? 'info',
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      // Session ids never leave whole, whatever field or child binding carries them.
      formatters: { level: (label) => ({ level: label }), log: redactFields, bindings: redactFields },
    },
    destination,
  );
  return adapt(root);
}

function adapt(target: Pino): Logger {
  return {
    debug: (fields, message) => target.debug(fields, message),
    info: (fields, message) => target.info(fields, message),
    warn: (fields, message) => target.warn(fields, message),
    error: (fields, message) => target.error(fields, message),
    child: (fields) => adapt(target.child(fields)),
  };
}
