import mittModule from 'mitt';
import type { Emitter, EventType } from 'mitt';

// mitt ships CommonJS-style typings beside an ESM build: under NodeNext
// TypeScript sees the default import as the module object, while Node loads
// the function itself. One cast here keeps the rest of the code typed.
const mittFactory = mittModule as unknown as <Events extends Record<EventType, unknown>>() => Emitter<Events>;

export function createEmitter<Events extends Record<EventType, unknown>>(): Emitter<Events> {
  return mittFactory<Events>();
}
