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
   * Takes a free lease: SET NX PX with a fencing token INCRemented in the same
   * step (never below ARGV[3], the floor the store asks for). A held lease is
   * left alone and its holder returned with its remaining time.
   * KEYS: lease, fence. ARGV: node, lease ms, floor.
   * Returns {1, holder} or {0, holder, pttl}.
   */
  acquireLease: {
    numberOfKeys: 2,
    lua: `
      local holder = redis.call('GET', KEYS[1])
      if holder then return {0, holder, redis.call('PTTL', KEYS[1])} end
      local token = redis.call('INCR', KEYS[2])
      local floor = tonumber(ARGV[3])
      if token < floor then
        token = floor
        redis.call('SET', KEYS[2], token)
      end
      redis.call('PEXPIRE', KEYS[2], 86400000)
      holder = ARGV[1] .. ' ' .. token
      redis.call('SET', KEYS[1], holder, 'NX', 'PX', ARGV[2])
      return {1, holder}
    `,
  },
  /**
   * Renews many leases: each only if it is still ours. A lease that vanished
   * (Redis restarted empty, or it expired a moment ago) is taken back only if
   * no newer token was handed out meanwhile (the counter is not past ours);
   * the store's fence stands guard should the counter be gone too.
   * KEYS: lease1, fence1, lease2, fence2, … ARGV: lease ms, holder1, token1, holder2, token2, …
   * Returns the 1-based indexes of the leases lost.
   */
  renewLeases: {
    numberOfKeys: -1,
    lua: `
      local lost = {}
      for i = 1, #KEYS / 2 do
        local lease, fence = KEYS[2 * i - 1], KEYS[2 * i]
        local holder, token = ARGV[2 * i], tonumber(ARGV[2 * i + 1])
        local current = redis.call('GET', lease)
        if current == holder then
          redis.call('PEXPIRE', lease, ARGV[1])
        elseif current then
          lost[#lost + 1] = i
        else
          local counter = tonumber(redis.call('GET', fence) or '0')
          if counter > token then
            lost[#lost + 1] = i
          else
            if counter < token then redis.call('SET', fence, token, 'PX', 86400000) end
            redis.call('SET', lease, holder, 'PX', ARGV[1])
          end
        end
      end
      return lost
    `,
  },
  /**
   * Raises a held lease's token past the store's (after Redis lost its
   * counter, the store may carry a newer token than Redis hands out).
   * KEYS: lease, fence. ARGV: holder, new floor, lease ms, node.
   * Returns the new holder, or false when the lease is no longer ours.
   */
  raiseLease: {
    numberOfKeys: 2,
    lua: `
      if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
      local token = math.max(tonumber(redis.call('GET', KEYS[2]) or '0') + 1, tonumber(ARGV[2]))
      redis.call('SET', KEYS[2], token, 'PX', 86400000)
      local holder = ARGV[4] .. ' ' .. token
      redis.call('SET', KEYS[1], holder, 'PX', ARGV[3])
      return holder
    `,
  },
  /** Lets a lease go, only if it is still ours. KEYS: lease. ARGV: holder. */
  releaseLease: {
    numberOfKeys: 1,
    lua: `
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

/** The scripts as typed commands of a connection. */
export interface ScriptCommands {
  publishEvent(lease: string, log: string, holder: string, channel: string, origin: string, json: string, seq: number, maxlen: number, ttlMs: number): Promise<number>;
  acquireLease(lease: string, fence: string, node: string, leaseMs: number, floor: number): Promise<[1, string] | [0, string, number]>;
  renewLeases(keyCount: number, ...keysThenArgs: Arg[]): Promise<number[]>;
  raiseLease(lease: string, fence: string, holder: string, floor: number, leaseMs: number, node: string): Promise<string | null>;
  releaseLease(lease: string, holder: string): Promise<number>;
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
