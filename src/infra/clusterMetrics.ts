import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import type { ClusterNode } from '../cluster/clusterNode.ts';

/**
 * The cluster's metrics, in the node's registry: who this node is, what the
 * other nodes report in their heartbeats (bounded by the number of nodes),
 * Redis reachability and command count, routed commands, lost leases and
 * fenced writes.
 */
export function registerClusterMetrics(register: Registry, cluster: ClusterNode): void {
  const registers = [register];
  new Gauge({
    name: 'llm_chat_node_info',
    help: 'This node of the cluster (value 1; the node label names it).',
    labelNames: ['node'] as const,
    registers,
    collect() {
      this.set({ node: cluster.nodeId }, 1);
    },
  });
  new Gauge({
    name: 'llm_chat_redis_up',
    help: '1 while this node reaches Redis (its subscriptions are live and its leases renew), else 0.',
    registers,
    collect() {
      this.set(cluster.bus.connected && cluster.leases.healthy ? 1 : 0);
    },
  });
  new Gauge({
    name: 'llm_chat_cluster_node_sessions',
    help: 'Live sessions per node of the cluster, as each node last reported.',
    labelNames: ['node'] as const,
    registers,
    async collect() {
      this.reset();
      for (const node of await cluster.nodes().catch(() => [])) if (node.alive) this.set({ node: node.id }, Number(node['sessions'] ?? 0));
    },
  });
  new Gauge({
    name: 'llm_chat_cluster_node_connections',
    help: 'Open WebSocket + SSE connections per node of the cluster, as each node last reported.',
    labelNames: ['node'] as const,
    registers,
    async collect() {
      this.reset();
      for (const node of await cluster.nodes().catch(() => [])) if (node.alive) this.set({ node: node.id }, Number(node['connections'] ?? 0));
    },
  });
  const commands = new Counter({ name: 'llm_chat_redis_commands_total', help: 'Redis commands this node issued (publishes, leases, routing, subscriptions).', registers });
  const routed = new Counter({
    name: 'llm_chat_routed_commands_total',
    help: 'Session commands by where they ran: local (this node owns it), remote (routed to the owner), waited (after a dead owner\'s lease expired), failed.',
    labelNames: ['op', 'outcome'] as const,
    registers,
  });
  const lost = new Counter({ name: 'llm_chat_leases_lost_total', help: 'Session leases this node lost: moved (another node has it) or unavailable (renewal failed).', labelNames: ['reason'] as const, registers });
  const fenced = new Counter({ name: 'llm_chat_fenced_writes_total', help: 'Writes the store refused because a newer owner had claimed the session.', registers });
  const publishFailed = new Counter({ name: 'llm_chat_redis_publish_failures_total', help: 'Events not published to other nodes because Redis did not take them.', registers });
  cluster.counters.redisCommand = (count) => commands.inc(count);
  cluster.counters.routed = (op, outcome) => routed.inc({ op, outcome });
  cluster.counters.leasesLost = (count, reason) => lost.inc({ reason }, count);
  cluster.counters.fencedWrite = () => fenced.inc();
  cluster.counters.publishFailed = () => publishFailed.inc();
}
