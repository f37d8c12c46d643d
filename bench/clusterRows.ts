/** The printed rows of `npm run bench -- --scenario cluster`, each with its target. */
import type { createClusterBench } from './clusterScenario.ts';
import { formatNumber } from './stats.ts';
import type { Row } from './stats.ts';

const ratio = (ours: number, base: number | undefined) => (base === undefined || !base ? '' : `${(ours / base).toFixed(2)}×`);
const verdict = (ok: boolean): 'pass' | 'FAIL' => (ok ? 'pass' : 'FAIL');

export type ClusterFigures = Awaited<ReturnType<ReturnType<typeof createClusterBench>['run']>>;

/** The printed rows of the cluster scenario. */
export function clusterRows(cluster: ClusterFigures, leaseMs: number): Row[] {
  const config = { leaseMs };
    const s = cluster.single;
    const ms = (value: number) => formatNumber(value);
    return [
      { figure: `cluster: connections held over ${cluster.workers} workers (${cluster.store})`, ours: `${cluster.held} (${cluster.failed} failed, ${cluster.retried} retries)`, target: `${cluster.sessions}`, verdict: verdict(cluster.held === cluster.sessions) },
      { figure: 'cluster: RSS per connection, summed over the workers (KB)', ours: formatNumber(cluster.rssPerConnectionKB, 2), baseline: `total ${formatNumber(cluster.rssTotalMB)} MB` },
      { figure: `cluster: ${cluster.streamed.streaming} streaming at once, replies complete`, ours: `${cluster.streamed.completed}`, baseline: s ? `${s.completed} of ${s.streaming} (${cluster.singleHeld} held)` : '', target: 'all', verdict: verdict(cluster.streamed.completed === cluster.streamed.streaming) },
      { figure: 'cluster: leases lost during the run: unavailable (not renewed in time) / moved', ours: `${cluster.leases.lostUnavailable} / ${cluster.leases.lostMoved}`, target: '0 / 0', verdict: verdict(cluster.leases.lostUnavailable + cluster.leases.lostMoved === 0) },
      { figure: 'cluster: worst heartbeat round trip (own thread) / worst main-loop tick lateness (ms)', ours: `${ms(cluster.leases.heartbeatRoundTripMaxMs)} / ${ms(cluster.leases.tickLateMaxMs)}`, baseline: `lease ${config.leaseMs} ms` },
      { figure: 'cluster: time to first chunk p50 / p99 (ms)', ours: `${ms(cluster.streamed.ttfcP50Ms)} / ${ms(cluster.streamed.ttfcP99Ms)}`, baseline: s ? `${ms(s.ttfcP50Ms)} / ${ms(s.ttfcP99Ms)}` : '', target: 'p99 < 500', verdict: verdict(cluster.streamed.ttfcP99Ms < 500) },
      { figure: 'cluster: chunk lateness p50 / p99 (ms)', ours: `${ms(cluster.streamed.latenessP50Ms)} / ${ms(cluster.streamed.latenessP99Ms)}`, baseline: s ? `${ms(s.latenessP50Ms)} / ${ms(s.latenessP99Ms)}` : '', target: 'p99 < 100', verdict: verdict(cluster.streamed.latenessP99Ms < 100) },
      { figure: 'cluster: chunks/s delivered (vs one process, same streaming load)', ours: formatNumber(cluster.streamed.chunksPerSecond), baseline: s ? formatNumber(s.chunksPerSecond) : '', ratio: ratio(cluster.streamed.chunksPerSecond, s?.chunksPerSecond) },
      { figure: 'cluster: server CPU per reply, all workers (ms)', ours: formatNumber(cluster.cpuMsPerReply, 3), baseline: `idle ${formatNumber(cluster.idleCpuMsPerSecond)} ms/s` },
      { figure: 'cluster: Redis commands issued per chunk: publishes / all (nodes\' own count)', ours: `${formatNumber(cluster.publishesPerChunk, 2)} / ${formatNumber(cluster.issuedPerChunk, 2)}`, baseline: `leases ${formatNumber(cluster.leaseCommandsPerChunk, 2)}` },
      { figure: 'cluster: Redis-side calls per chunk, scripts\' inner calls counted (all / less idle background)', ours: `${formatNumber(cluster.redisCommandsPerChunk, 2)} / ${formatNumber(cluster.redisCommandsPerChunkStreaming, 2)}`, baseline: `idle ${formatNumber(cluster.idleRedisCallsPerSecond)}/s` },
      { figure: 'cluster: Redis memory per live session, idle / streaming (bytes)', ours: `${formatNumber(cluster.redisPerSessionBytes)} / +${formatNumber(cluster.redisPerStreamingSessionBytes)}` },
      { figure: 'cluster: cancel via any worker p50 / p99 (ms)', ours: `${ms(cluster.commands.cancel.p50)} / ${ms(cluster.commands.cancel.p99)} (${cluster.commands.cancel.count})`, target: 'p99 < 100', verdict: verdict(cluster.commands.cancel.p99 < 100) },
      { figure: 'cluster: delete via any worker p50 / p99 (ms)', ours: `${ms(cluster.commands.delete.p50)} / ${ms(cluster.commands.delete.p99)} (${cluster.commands.delete.count})`, target: 'p99 < 100', verdict: verdict(cluster.commands.delete.p99 < 100) },
      { figure: `cluster: kill -9 of a worker → its sessions served elsewhere p50 / p99 / max (ms, ${cluster.killed.timed} timed)`, ours: `${ms(cluster.killed.servedAfter.p50)} / ${ms(cluster.killed.servedAfter.p99)} / ${ms(cluster.killed.servedAfter.max)}`, baseline: `lease ${config.leaseMs} ms`, target: `≤ lease + 1 s`, verdict: verdict(cluster.killed.failures === 0 && cluster.killed.servedAfter.max <= config.leaseMs + 1000) },
      { figure: 'cluster: killed worker replaced by the primary', ours: cluster.killed.replaced ? 'yes' : 'no', verdict: verdict(cluster.killed.replaced) },
    ];
}
