import type { Redis } from 'ioredis';

/**
 * The Lua scripts llm-chat runs in Redis: each is one command (EVALSHA) and
 * atomic. ioredis loads them by SHA and falls back to EVAL after a Redis
 * restart emptied the script cache.
 */
const SCRIPTS = {
  /**
   * One event of a session, in one command: refused (-1) unless this node
   * still holds the lease with this token (a node that lost its lease
   * publishes nothing); a chunk is appended to the capped stream (entry id
   * `seq-0`, so XRANGE by seq is direct) whose expiry is pushed back; then the
   * event goes out on the session's shard channel. Returns the receivers.
   * KEYS: lease, log. ARGV: holder, channel, origin, json, seq (0: not a chunk), maxlen, ttl ms.
   */
  publishEvent: {
    numberOfKeys: 2,
    lua: `
      if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
      if ARGV[5] ~= '0' then
        redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], ARGV[5] .. '-0', 'e', ARGV[4])
        redis.call('PEXPIRE', KEYS[2], ARGV[7])
      end
      return redis.call('SPUBLISH', ARGV[2], ARGV[3] .. '|' .. ARGV[4])
    `,
  },
  /**
   * Takes a free lease: the session key is SET NX with a fencing token
   * INCRemented in the same step (never below ARGV[3], the floor the store
   * asks for). A lease counts as held only while its node's heartbeat key
   * (PX the lease) lives, so a lease of a dead node is free; a node whose own
   * heartbeat is missing may not take any (it must renew first). A lease that
   * still names the caller is one it gave up locally (it asks only for leases
   * it does not hold): it takes it again under a new, higher token. Returns
   * {1, holder}, {0, holder, pttl of the holder's heartbeat}, or {-1} (own
   * heartbeat missing).
   * KEYS: lease, fence, own heartbeat, own held set. ARGV: node, unused, floor, heartbeat key prefix.
   */
  acquireLease: {
    numberOfKeys: 4,
    lua: `
      if redis.call('EXISTS', KEYS[3]) == 0 then return {-1} end
      local holder = redis.call('GET', KEYS[1])
      if holder then
        local node = string.match(holder, '^(.*) %d+$')
        if node ~= ARGV[1] then
          local alive = redis.call('PTTL', ARGV[4] .. node .. '}:alive')
          if alive > 0 or alive == -1 then return {0, holder, alive} end
        end
      end
      local token = redis.call('INCR', KEYS[2])
      local floor = tonumber(ARGV[3])
      if token < floor then
        token = floor
        redis.call('SET', KEYS[2], token)
      end
      redis.call('PEXPIRE', KEYS[2], 86400000)
      holder = ARGV[1] .. ' ' .. token
      redis.call('SET', KEYS[1], holder)
      redis.call('SADD', KEYS[4], ARGV[5])
      return {1, holder}
    `,
  },
  /**
   * Who holds a lease, if anyone does: the holder and the remaining time of
   * its node's heartbeat; false when free (absent, or its node is dead).
   * KEYS: lease. ARGV: heartbeat key prefix.
   */
  leaseHolder: {
    numberOfKeys: 1,
    lua: `
      local holder = redis.call('GET', KEYS[1])
      if not holder then return false end
      local node = string.match(holder, '^(.*) %d+$')
      local alive = redis.call('PTTL', ARGV[1] .. node .. '}:alive')
      if alive > 0 or alive == -1 then return {holder, alive} end
      return false
    `,
  },
  /**
   * The node's heartbeat, which is the renewal of every lease it holds: one
   * command per node, whatever the number of its sessions. Returns 1, or 0
   * when the key had expired (the node was presumed dead: its leases may have
   * been taken and must be checked before it acts on them again).
   * KEYS: heartbeat, nodes set. ARGV: description JSON, lease ms, node.
   */
  heartbeat: {
    numberOfKeys: 2,
    lua: `
      local existed = redis.call('EXISTS', KEYS[1])
      redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
      redis.call('SADD', KEYS[2], ARGV[3])
      return existed
    `,
  },
  /**
   * After the heartbeat was found expired (a pause, Redis restarted empty):
   * keeps each lease still ours, takes back one that vanished only if no newer
   * token was handed out meanwhile (the store's fence stands guard should the
   * counter be gone too), and reports the others lost.
   * KEYS: lease1, fence1, lease2, fence2, … ARGV: held set, holder1, token1, holder2, token2, …
   * Returns the 1-based indexes of the leases lost.
   */
  reclaimLeases: {
    numberOfKeys: -1,
    lua: `
      local lost = {}
      for i = 1, #KEYS / 2 do
        local lease, fence = KEYS[2 * i - 1], KEYS[2 * i]
        local holder, token = ARGV[2 * i], tonumber(ARGV[2 * i + 1])
        local current = redis.call('GET', lease)
        if current == holder then
          redis.call('SADD', ARGV[1], lease)
        elseif current then
          lost[#lost + 1] = i
        else
          local counter = tonumber(redis.call('GET', fence) or '0')
          if counter > token then
            lost[#lost + 1] = i
          else
            if counter < token then redis.call('SET', fence, token, 'PX', 86400000) end
            redis.call('SET', lease, holder)
            redis.call('SADD', ARGV[1], lease)
          end
        end
      end
      return lost
    `,
  },
  /**
   * Deletes a dead node's leases (the keys its held set names, where they
   * still name it) and the set: they were free already, this frees memory.
   * KEYS: held set. ARGV: node.
   */
  forgetNode: {
    numberOfKeys: 1,
    lua: `
      local prefix = ARGV[1] .. ' '
      for _, lease in ipairs(redis.call('SMEMBERS', KEYS[1])) do
        local holder = redis.call('GET', lease)
        if holder and string.sub(holder, 1, #prefix) == prefix then redis.call('DEL', lease) end
      end
      return redis.call('DEL', KEYS[1])
    `,
  },
  /** Lets a lease go, only if it is still ours. KEYS: lease, own held set. ARGV: holder. */
  releaseLease: {
    numberOfKeys: 2,
    lua: `
      redis.call('SREM', KEYS[2], KEYS[1])
      if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
      return 0
    `,
  },
  /**
   * Registers (or refreshes) the store identity shared by every node. Returns
   * the identity already registered when it differs from ours.
   * KEYS: store. ARGV: identity, ttl ms.
   */
  registerStore: {
    numberOfKeys: 1,
    lua: `
      local current = redis.call('GET', KEYS[1])
      if current and current ~= ARGV[1] then return current end
      redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
      return false
    `,
  },
} as const;

type Arg = string | number;

/** The heartbeat script's source, for the heartbeat thread's own connection. */
export const HEARTBEAT_LUA = SCRIPTS.heartbeat.lua;

/** The scripts as typed commands of a connection. */
export interface ScriptCommands {
  publishEvent(lease: string, log: string, holder: string, channel: string, origin: string, json: string, seq: number, maxlen: number, ttlMs: number): Promise<number>;
  acquireLease(lease: string, fence: string, heartbeat: string, held: string, node: string, unused: number, floor: number, heartbeatPrefix: string, leaseKey: string): Promise<[1, string] | [0, string, number] | [-1]>;
  leaseHolder(lease: string, heartbeatPrefix: string): Promise<[string, number] | null>;
  heartbeat(heartbeat: string, nodes: string, description: string, leaseMs: number, node: string): Promise<number>;
  reclaimLeases(keyCount: number, ...keysThenArgs: Arg[]): Promise<number[]>;
  forgetNode(held: string, node: string): Promise<number>;
  raiseLease(lease: string, fence: string, holder: string, floor: number, unused: number, node: string): Promise<string | null>;
  releaseLease(lease: string, held: string, holder: string): Promise<number>;
  registerStore(key: string, identity: string, ttlMs: number): Promise<string | null>;
}

/** Defines the scripts on a connection (once) and returns it with them typed. */
export function withScripts(redis: Redis): Redis & ScriptCommands {
  const marked = redis as Redis & ScriptCommands & { llmChatScripts?: true };
  if (!marked.llmChatScripts) {
    for (const [name, script] of Object.entries(SCRIPTS)) {
      redis.defineCommand(name, script.numberOfKeys < 0 ? { lua: script.lua } : { numberOfKeys: script.numberOfKeys, lua: script.lua });
    }
    marked.llmChatScripts = true;
  }
  return marked;
}
