import type { Redis } from 'ioredis';
import { ChatError, ERROR_CODES } from '../domain/errors.ts';
import type { ErrorCode } from '../domain/errors.ts';
import type { SessionId } from '../domain/ids.ts';
import type { Logger } from '../domain/ports.ts';
import { redisKeys } from '../infra/redisKeys.ts';

/** What a node may ask the owner of a session to do. */
export type CommandOp = 'send' | 'cancel' | 'view' | 'messages' | 'remove' | 'activate';

export interface CommandRequest {
  readonly id: string;
  readonly from: string;
  readonly op: CommandOp;
  readonly sessionId: SessionId;
  readonly args?: unknown;
}

interface WireFailure {
  code: ErrorCode;
  message: string;
  retryAfterMs?: number;
  upstreamStatus?: number;
}

type ReplyMessage = { re: string; ok: true; value: unknown } | { re: string; ok: false; error: WireFailure } | { re: string; moved: true };

/** The owner's answer, or why there is none. */
export type CallOutcome =
  | { kind: 'answer'; value: unknown }
  | { kind: 'moved' }
  /** Nobody subscribed to the node's channel: it is gone, or cut off from Redis. */
  | { kind: 'undelivered' }
  | { kind: 'timeout' };

/** Runs a command on this node: returns the value, throws a ChatError, or `MOVED` when the session is not (or no longer) here. */
export type CommandHandler = (request: CommandRequest) => Promise<unknown>;

export const MOVED = Symbol('moved');

export interface CommandRouterOptions {
  commands: Redis;
  /** A connection of its own, in subscriber mode. */
  subscriber: Redis;
  nodeId: string;
  logger: Logger;
  handle: CommandHandler;
  onCommand?: (count: number) => void;
}

/**
 * Request/reply between nodes over Redis shard channels: each node listens
 * on its own channel; a command goes to the owner's, the answer comes back
 * on the sender's. SPUBLISH says how many received it, so a command to a
 * node that is gone is known undelivered at once (the caller then waits for
 * that node's lease to expire) instead of timing out.
 */
export function createCommandRouter(options: CommandRouterOptions) {
  const { commands, subscriber, nodeId, logger } = options;
  const onCommand = options.onCommand ?? (() => {});
  const own = redisKeys.rpc(nodeId);
  const pending = new Map<string, (reply: ReplyMessage) => void>();
  let sequence = 0;

  const reply = (to: string, message: ReplyMessage) => {
    onCommand(1);
    commands.spublish(redisKeys.rpc(to), JSON.stringify(message)).catch((error: unknown) => {
      logger.warn({ err: String(error) }, 'command reply not sent');
    });
  };

  const serve = async (request: CommandRequest) => {
    try {
      const value = await options.handle(request);
      reply(request.from, value === MOVED ? { re: request.id, moved: true } : { re: request.id, ok: true, value: value ?? null });
    } catch (error) {
      const failure: WireFailure =
        error instanceof ChatError
          ? {
              code: error.code,
              message: error.message,
              ...(error.retryAfterMs !== undefined ? { retryAfterMs: error.retryAfterMs } : {}),
              ...(error.upstreamStatus !== undefined ? { upstreamStatus: error.upstreamStatus } : {}),
            }
          : { code: 'internal_error', message: new ChatError('internal_error').message };
      if (!(error instanceof ChatError)) logger.error({ op: request.op, err: String(error) }, 'routed command failed');
      reply(request.from, { re: request.id, ok: false, error: failure });
    }
  };

  const onMessage = (channel: string, text: string) => {
    if (channel !== own) return;
    let message: CommandRequest | ReplyMessage;
    try {
      message = JSON.parse(text) as CommandRequest | ReplyMessage;
    } catch {
      return;
    }
    if ('re' in message) pending.get(message.re)?.(message);
    else void serve(message);
  };
  subscriber.on('smessage', onMessage);

  return {
    /** Subscribes to this node's channel (start-up; ioredis re-subscribes after a reconnection). */
    async start(): Promise<void> {
      await subscriber.ssubscribe(own);
    },

    /** Sends a command to `node` and waits for its answer (at most `timeoutMs`). A failure answer is thrown as its ChatError. */
    async call(node: string, op: CommandOp, sessionId: SessionId, args: unknown, timeoutMs: number): Promise<CallOutcome> {
      const id = `${nodeId}:${++sequence}`;
      const request: CommandRequest = { id, from: nodeId, op, sessionId, ...(args !== undefined ? { args } : {}) };
      let timer: NodeJS.Timeout | undefined;
      const answered = new Promise<ReplyMessage | undefined>((resolve) => {
        pending.set(id, resolve);
        timer = setTimeout(() => resolve(undefined), timeoutMs);
      });
      try {
        let receivers: number;
        try {
          onCommand(1);
          receivers = Number(await commands.spublish(redisKeys.rpc(node), JSON.stringify(request)));
        } catch (error) {
          logger.warn({ err: String(error) }, 'redis did not take a routed command');
          throw new ChatError('unavailable', undefined, { cause: error, retryAfterMs: 1000 });
        }
        if (receivers === 0) return { kind: 'undelivered' };
        const message = await answered;
        if (!message) return { kind: 'timeout' };
        if ('moved' in message) return { kind: 'moved' };
        if (message.ok) return { kind: 'answer', value: message.value };
        const { code, message: text, retryAfterMs, upstreamStatus } = message.error;
        const known = (ERROR_CODES as readonly string[]).includes(code) ? code : 'internal_error';
        throw new ChatError(known, text, {
          ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
          ...(upstreamStatus !== undefined ? { upstreamStatus } : {}),
        });
      } finally {
        clearTimeout(timer);
        pending.delete(id);
      }
    },

    close(): void {
      subscriber.off('smessage', onMessage);
      for (const resolve of pending.values()) resolve({ re: '', moved: true });
      pending.clear();
    },
  };
}

export type CommandRouter = ReturnType<typeof createCommandRouter>;
