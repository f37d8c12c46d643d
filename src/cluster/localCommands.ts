import type { LiveSession } from '../actors/liveSession.ts';
import type { SessionRegistry } from '../actors/sessionRegistry.ts';
import type { GenerationOptions } from '../domain/generationOptions.ts';
import type { MessagePageQuery } from '../domain/ports.ts';
import type { CommandOp } from './commandRouter.ts';

/** Runs a command on a session whose actor runs here (its owner): what a routed command does on arrival. */
export async function runCommand(registry: SessionRegistry, session: LiveSession, op: CommandOp, args: unknown): Promise<unknown> {
  switch (op) {
    case 'send': {
      const { text, options: generation } = args as { text: string; options?: GenerationOptions };
      return await session.send(text, generation);
    }
    case 'cancel':
      return session.cancel();
    case 'view':
      return session.view();
    case 'messages':
      return registry.listMessages(session.sessionId, args as MessagePageQuery);
    case 'remove':
      return registry.remove(session.sessionId);
    case 'activate':
      return null;
  }
}
