import type { LiveSession } from '../actors/liveSession.ts';
import type { SessionAccess, SessionRegistry } from '../actors/sessionRegistry.ts';
import type { UserInput } from '../domain/conversation.ts';
import { ChatError } from '../domain/errors.ts';
import type { GenerationOptions } from '../domain/generationOptions.ts';
import type { MessagePageQuery } from '../domain/ports.ts';
import type { CommandOp } from './commandRouter.ts';

/**
 * Runs a command on a session whose actor runs here (its owner): what a
 * routed command does on arrival. The caller's access is checked here, where
 * the session is: another key's session is "not found", as on one node.
 */
export async function runCommand(
  registry: SessionRegistry,
  session: LiveSession,
  op: CommandOp,
  args: unknown,
  access: SessionAccess | undefined,
): Promise<unknown> {
  if (access?.owner !== undefined && session.owner !== access.owner) throw new ChatError('session_not_found');
  switch (op) {
    case 'send': {
      const { text, input, options: generation } = args as { text?: string; input?: UserInput; options?: GenerationOptions };
      return await session.send(input ?? text ?? '', generation);
    }
    case 'cancel':
      return session.cancel();
    case 'view':
      return session.view((args as { limit?: number } | undefined)?.limit);
    case 'messages':
      return (await session.messages(args as MessagePageQuery)) ?? null;
    case 'remove':
      return registry.remove(session.sessionId, access);
    case 'activate':
      return null;
  }
}
