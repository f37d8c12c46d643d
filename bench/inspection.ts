// What inspection costs: replies per second through real session actors with
// no observer, with the inspector's hub but nobody watching, with one session
// watched, and with an observer on every session (what the hub avoids).
// Run: npx tsx bench/inspection.ts [sessions=200] [rounds=20]
import { createInspectionHub } from '../src/actors/inspectionHub.ts';
import { createSessionRegistry } from '../src/actors/sessionRegistry.ts';
import type { ChatEvent } from '../src/domain/events.ts';
import { createInProcessBus } from '../src/infra/inProcessBus.ts';
import { silentLogger } from '../src/infra/silentLogger.ts';
import { createMemoryStore } from '../src/infra/memoryStore.ts';
import { randomIds } from '../src/infra/randomIds.ts';
import { createSimulatedProvider } from '../src/infra/simulatedProvider.ts';
import { systemClock } from '../src/infra/systemClock.ts';

const sessions = Number(process.argv[2] ?? 200);
const rounds = Number(process.argv[3] ?? 20);
type Mode = 'no observer' | 'hub, nobody watching' | 'hub, one session watched' | 'observer on every session';

async function run(mode: Mode): Promise<number> {
  const bus = createInProcessBus({ replayLogSize: 100 });
  const registry = createSessionRegistry({
    bus,
    store: createMemoryStore(),
    provider: createSimulatedProvider({ chunks: 5, intervalMs: 0, clock: systemClock }),
    clock: systemClock,
    logger: silentLogger,
    ids: randomIds,
    queueLimit: rounds + 1,
  });
  const live = await Promise.all(Array.from({ length: sessions }, () => registry.create()));
  const hub = mode.startsWith('hub') ? createInspectionHub({ registry, bus, clock: systemClock }) : undefined;
  let records = 0;
  if (mode === 'hub, one session watched' && hub && live[0]) hub.watch(live[0].sessionId, () => (records += 1));
  if (mode === 'observer on every session') for (const session of live) session.actor.system.inspect(() => (records += 1));

  let completed = 0;
  const total = sessions * rounds;
  const done = new Promise<void>((resolve) =>
    bus.subscribeAll((event: ChatEvent) => {
      if (event.type === 'message.completed' && ++completed === total) resolve();
    }),
  );
  const started = performance.now();
  const sends: Promise<unknown>[] = [];
  for (let round = 0; round < rounds; round += 1) for (const session of live) sends.push(session.send(`message ${round}`));
  await Promise.all(sends);
  await done;
  const seconds = (performance.now() - started) / 1000;
  hub?.close();
  await registry.close();
  await bus.close();
  return total / seconds;
}

const modes: Mode[] = ['no observer', 'hub, nobody watching', 'hub, one session watched', 'observer on every session'];
await run('no observer'); // warm-up
for (const mode of modes) {
  const samples = [await run(mode), await run(mode), await run(mode)].sort((a, b) => a - b);
  console.log(`${mode.padEnd(28)} ${Math.round(samples[1] ?? 0).toString().padStart(7)} replies/s (median of 3; ${sessions} sessions × ${rounds} replies of 5 chunks)`);
}
