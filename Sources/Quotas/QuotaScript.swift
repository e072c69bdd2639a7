/// The Lua scripts that check and charge quotas in Redis, and their SHA-1 names.
///
/// ## `admit`: every level of one request, all or nothing, one round trip
///
/// KEYS, four per level, in level order (customer, partner, OEM — `QuotaKeys.all`):
/// `rate`, `day`, `month`, `inflight`. Keys of kinds a level does not limit are passed anyway
/// (so Redis Cluster sees every key the script could touch) and left alone.
///
/// ARGV (decimal integers):
/// 1. `now`, µs since the epoch, 2. `cost` (≥ 1), 3. `n` levels,
/// 4. µs until the UTC day ends, 5. µs until the UTC month ends,
/// 6. day-key TTL, s, 7. month-key TTL, s, 8. in-flight-key TTL, s;
/// then five per level: T (µs, `0` = no rate limit), burst, day limit, month limit,
/// concurrency limit (`-1` = no such limit).
///
/// Usage metering rides along (`UsageMeter`'s hash): when KEYS has one more key after the
/// levels' — the customer's usage hash for the day — and ARGV one more value — its TTL in
/// seconds — an admission adds 1 to `requests` and the cost to `cost`, a refusal adds 1 to
/// `refused`. Metering then costs no round trip of its own.
///
/// Every check of every level runs before anything is written, so a request refused at the
/// OEM level leaves the customer's and partner's keys untouched. Redis runs a script alone,
/// so no other admission interleaves: with N left, exactly N of any number of concurrent
/// requests — from any number of gateway nodes — are admitted.
///
/// Reply:
/// - refused: `[0, level (1-based), kind ("rate"|"day"|"month"|"concurrency"), retry-after ms,
///   limit, remaining, reset-after µs]`. When several checks refuse, the one with the longest
///   retry-after is reported (retrying sooner could not succeed). Retry-after `-1`: never under
///   these limits (the cost exceeds the burst or the calendar limit, or a concurrency limit of
///   0). A concurrency refusal has no known retry time and reports `0`. `limit`: the burst for
///   `rate`. `remaining`: what the refusing limit has left at `now`, in the units of the
///   admitted reply (unit-cost requests for `rate`, cost units for `day`/`month`, free slots
///   for `concurrency`; never negative). `reset-after`: µs from `now` until that limit is fully
///   reset — for `rate` until it is idle (the stored TAT minus `now`, as the check used it), for
///   `day`/`month` until the period ends; `-1` for `concurrency`. With these two a refusal
///   tells when a request of *any* cost fits, which `OverLimitCache` relies on.
/// - admitted: `[1]` followed by five per level: burst remaining, ms until the rate limit is
///   fully idle, day remaining, month remaining, concurrency remaining (`-1` where the level
///   has no such limit).
///
/// Charging an admitted request: TAT := now + max(TAT − now, 0) + cost × T (with the `GCRA`
/// type's rules, line for line), stored with a TTL one second past the instant it means
/// "idle"; day and month `INCRBY cost` with their TTL renewed; in-flight `INCR` with its
/// safety TTL renewed (the request must be `release`d when it ends).
///
/// ## Clock
/// `now` is the calling gateway node's clock, passed in rather than read with Redis `TIME`,
/// so that tests inject it and the script stays deterministic. Nodes must run NTP: a node δ
/// ahead of the others admits at most δ × rate more than the limit, a node behind is stricter.
/// TTLs are relative (`PX`/`EXPIRE`), never absolute, so they do not depend on Redis's clock
/// agreeing with `now`.
///
/// ## Arithmetic
/// Lua numbers are doubles. Every value stays an integer below 2^53 (see `GCRA.maxInstant`,
/// `RateLimit.maxWindow`); the one division is corrected to an exact floor, and values are
/// written back with `%d`, never in exponent notation.
public enum QuotaScript {
    /// Lua both scripts share: an exact floor division on doubles, µs rounded up to ms, an
    /// integer written with `%d` (never in exponent notation), a key read as a number.
    static let arithmetic = #"""
    local function idiv(a, b)
      local q = math.floor(a / b)
      if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
      return q
    end
    local function ceilms(us) return idiv(us + 999, 1000) end
    local function int(x) return string.format('%d', x) end
    local function stored(key)
      local raw = redis.call('GET', key)
      return raw and tonumber(raw)
    end
    -- A calendar counter (or a usage field) is given its TTL when a charge creates it: the TTL
    -- names the same instant at every charge (the period's end plus a margin), so setting it
    -- again on every charge only cost Redis a command per counter per script.
    local function count(key, amount, ttl)
      if redis.call('INCRBY', key, int(amount)) == amount then redis.call('EXPIRE', key, ttl) end
    end
    """#

    /// Lua both scripts share: of several refusing checks, the one with the longest
    /// retry-after is kept in `worst` (the refusal reply's layout).
    static let refusal = #"""
    local worst = nil
    local function refuse(level, kind, retry, limit, left, reset)
      if worst ~= nil and (worst[4] == -1 or (retry ~= -1 and retry <= worst[4])) then return end
      worst = {0, level, kind, retry, limit, math.max(left, 0), reset}
    end
    """#

    public static let admit = #"""
    local now = tonumber(ARGV[1])
    local cost = tonumber(ARGV[2])
    local n = tonumber(ARGV[3])
    local dayReset = tonumber(ARGV[4])
    local monthReset = tonumber(ARGV[5])
    local dayTTL = ARGV[6]
    local monthTTL = ARGV[7]
    local inflightTTL = ARGV[8]

    \#(Self.arithmetic)

    local usageKey = KEYS[n * 4 + 1]
    local usageTTL = ARGV[8 + n * 5 + 1]
    local function meter(field, amount)
      if usageKey and redis.call('HINCRBY', usageKey, field, amount) == tonumber(amount) then
        redis.call('EXPIRE', usageKey, usageTTL)
      end
    end

    \#(Self.refusal)

    -- A calendar quota of one level: the units left after this request, or -1 (no limit, or refused).
    local function calendar(level, kind, key, limit, reset)
      if limit < 0 then return -1 end
      local used = stored(key) or 0
      if cost > limit then refuse(level, kind, -1, limit, limit - used, reset)
      elseif used + cost > limit then refuse(level, kind, ceilms(reset), limit, limit - used, reset)
      else return limit - used - cost end
      return -1
    end

    local tats = {}
    local reply = {1}
    for i = 1, n do
      local a = 8 + (i - 1) * 5
      local k = (i - 1) * 4
      local T = tonumber(ARGV[a + 1])
      local burst = tonumber(ARGV[a + 2])
      local dayLimit = tonumber(ARGV[a + 3])
      local monthLimit = tonumber(ARGV[a + 4])
      local concurrency = tonumber(ARGV[a + 5])
      local rate, rateReset, day, month, inflight = -1, -1, -1, -1, -1
      if T > 0 then
        local window = T * burst
        local charge = cost * T
        local ahead = 0
        local tat = stored(KEYS[k + 1])
        if tat and tat > now and tat - now <= window then ahead = tat - now end
        if charge > window then
          refuse(i, 'rate', -1, burst, idiv(window - ahead, T), ahead)
        else
          local newAhead = ahead + charge
          if newAhead > window then
            refuse(i, 'rate', ceilms(newAhead - window), burst, idiv(window - ahead, T), ahead)
          else
            tats[i] = now + newAhead
            rate = idiv(window - newAhead, T)
            rateReset = ceilms(newAhead)
          end
        end
      end
      day = calendar(i, 'day', KEYS[k + 2], dayLimit, dayReset)
      month = calendar(i, 'month', KEYS[k + 3], monthLimit, monthReset)
      if concurrency >= 0 then
        local busy = stored(KEYS[k + 4]) or 0
        if concurrency < 1 then refuse(i, 'concurrency', -1, concurrency, 0, -1)
        elseif busy + 1 > concurrency then refuse(i, 'concurrency', 0, concurrency, concurrency - busy, -1)
        else inflight = concurrency - busy - 1 end
      end
      reply[#reply + 1] = rate
      reply[#reply + 1] = rateReset
      reply[#reply + 1] = day
      reply[#reply + 1] = month
      reply[#reply + 1] = inflight
    end
    if worst ~= nil then
      meter('refused', 1)
      return worst
    end

    for i = 1, n do
      local a = 8 + (i - 1) * 5
      local k = (i - 1) * 4
      if tats[i] then
        redis.call('SET', KEYS[k + 1], int(tats[i]), 'PX', int(ceilms(tats[i] - now) + 1000))
      end
      if tonumber(ARGV[a + 3]) >= 0 then count(KEYS[k + 2], cost, dayTTL) end
      if tonumber(ARGV[a + 4]) >= 0 then count(KEYS[k + 3], cost, monthTTL) end
      if tonumber(ARGV[a + 5]) >= 0 then
        redis.call('INCR', KEYS[k + 4])
        redis.call('EXPIRE', KEYS[k + 4], inflightTTL)
      end
    end
    meter('requests', 1)
    meter('cost', int(cost))
    return reply
    """#

    public static let admitSHA = SHA1.hex(admit)

    /// KEYS: the in-flight keys of the levels with a concurrency limit (`QuotaPlan.inflightKeys`).
    /// Decrements each; a counter reaching 0 or below is deleted, so it never goes negative — a
    /// release after the safety TTL dropped the key, or a duplicate release, changes nothing.
    /// Reply: the number of keys.
    public static let release = #"""
    for i = 1, #KEYS do
      if redis.call('DECR', KEYS[i]) <= 0 then redis.call('DEL', KEYS[i]) end
    end
    return #KEYS
    """#

    public static let releaseSHA = SHA1.hex(release)
}

extension QuotaScript {
    /// ## `lease`: units for later admissions, every level at once, all or nothing
    ///
    /// KEYS and the first 8 + 5n ARGV as for `admit` (`need` in place of `cost`; concurrency
    /// limits are not leased and must be `-1`), then:
    /// `want`, `share`, `giveBack`, usage `requests`, `cost`, `refused`, `meterRefusal` (0|1),
    /// `hold` (µs), `usedNow` (the units of the grant the asking request uses at once: `need`
    /// or 0), two per level — `expectedTAT`, `returnedTAT` (µs, `-1` = nothing to give back) —, and
    /// the usage hash's TTL when KEYS has the usage key.
    ///
    /// In order, in one script (Redis runs it alone):
    /// 1. Usage deltas the node admitted from its lease are added to the customer's day.
    /// 2. Give back: `giveBack` units are subtracted from every day and month counter of the
    ///    plan that exists (never below 0); a level's rate TAT equal to `expectedTAT` — no
    ///    admission anywhere since the lease that set it — is set to `returnedTAT` (deleted
    ///    when that is not after `now`). A TAT that moved on is left alone: units granted
    ///    after it keep their place.
    /// 3. Nothing more when `want` is 0 (a return): reply `[3]`. Otherwise grant: the same
    ///    checks as `admit` for `need` units. A refusal answers exactly as `admit`'s (and meters a refusal when `meterRefusal` is 1).
    ///    Otherwise g = min(want, and at every level and kind: what it has left, and
    ///    max(need, ⌊left / share⌋)) — so one lease never takes more than a `share`-th of what a
    ///    level has left, except the request that asked — and every level is charged g: day
    ///    and month `INCRBY g`; at a rate level the `usedNow` units from max(TAT, now), as
    ///    `admit` would, then the h = g − `usedNow` held units from
    ///    max(that, now + min(hold, ⌊burst × T / 2⌋, burst × T − h × T)). Charging held units
    ///    from up to `hold` ahead keeps them usable that long (see below) at the price of
    ///    booking the limit that much ahead; a busy limit, already booked further ahead, is
    ///    charged from its TAT. Never more than half the limit's window ahead: a level many
    ///    leases share (a partner's, an OEM's) is booked that far by the first of them, and
    ///    the other half of its window is what later grants are made from — booked to its end,
    ///    every later grant would shrink to what time freed. A grant the request uses whole
    ///    (k = 1) is charged exactly as `admit` charges.
    ///
    /// A grant a request uses part of meters that request, as `admit` does.
    ///
    /// Reply: a refusal as `admit`'s; otherwise `[2]`, five per level as `admit`'s admitted
    /// reply (after the charge of g), g, and per level the rate base the held units were
    /// charged from (`-1` without a rate limit or when nothing was granted). Held unit j
    /// (0-based) may be used at instants up to base + j × T of every rate level,
    /// never later (`QuotaLease`): that keeps every admission conforming to the GCRA of every
    /// level, whatever the number of nodes.
    public static let lease = #"""
    local now = tonumber(ARGV[1])
    local need = tonumber(ARGV[2])
    local n = tonumber(ARGV[3])
    local dayReset = tonumber(ARGV[4])
    local monthReset = tonumber(ARGV[5])
    local dayTTL = ARGV[6]
    local monthTTL = ARGV[7]
    local L = 8 + n * 5
    local want = tonumber(ARGV[L + 1])
    local share = tonumber(ARGV[L + 2])
    local giveBack = tonumber(ARGV[L + 3])
    local meterRefusal = ARGV[L + 7] == '1'
    local hold = tonumber(ARGV[L + 8])
    local usedNow = tonumber(ARGV[L + 9])

    \#(Self.arithmetic)

    local usageKey = KEYS[n * 4 + 1]
    local usageTTL = ARGV[L + 10 + n * 2]
    local function meter(field, amount)
      if usageKey and amount > 0 and redis.call('HINCRBY', usageKey, field, int(amount)) == amount then
        redis.call('EXPIRE', usageKey, usageTTL)
      end
    end
    meter('requests', tonumber(ARGV[L + 4]))
    meter('cost', tonumber(ARGV[L + 5]))
    meter('refused', tonumber(ARGV[L + 6]))

    for i = 1, n do
      local a = 8 + (i - 1) * 5
      local k = (i - 1) * 4
      if giveBack > 0 then
        for kind = 3, 4 do
          local key = KEYS[k + kind - 1]
          if tonumber(ARGV[a + kind]) >= 0 then
            -- Never below 0, and a counter that did not exist (or held 0) is not left behind
            -- without its TTL: one command where a check first took two.
            local left = redis.call('DECRBY', key, int(giveBack))
            if left <= -giveBack then redis.call('DEL', key)
            elseif left < 0 then redis.call('INCRBY', key, -left) end
          end
        end
      end
      local expected = tonumber(ARGV[L + 10 + (i - 1) * 2])
      local returned = tonumber(ARGV[L + 11 + (i - 1) * 2])
      if expected >= 0 and stored(KEYS[k + 1]) == expected then
        if returned > now then
          redis.call('SET', KEYS[k + 1], int(returned), 'PX', int(ceilms(returned - now) + 1000))
        else
          redis.call('DEL', KEYS[k + 1])
        end
      end
    end

    if want <= 0 then return {3} end

    -- Every counter the grant reads, in one command (the same slot: one OEM's hash tag),
    -- after the give-back above has written its part: seven GETs on a three-level path cost
    -- Redis more than the one read.
    local current = redis.call('MGET', unpack(KEYS, 1, n * 4))
    local function read(index)
      local raw = current[index]
      return raw and tonumber(raw)
    end

    \#(Self.refusal)
    local granted = want
    local function bound(left)
      granted = math.min(granted, left, math.max(need, idiv(left, share)))
    end
    local function calendar(level, kind, index, limit, reset)
      if limit < 0 then return -1 end
      local used = read(index) or 0
      if need > limit then refuse(level, kind, -1, limit, limit - used, reset)
      elseif used + need > limit then refuse(level, kind, ceilms(reset), limit, limit - used, reset)
      else bound(limit - used) end
      return limit - used
    end

    local rates = {}
    local lefts = {}
    for i = 1, n do
      local a = 8 + (i - 1) * 5
      local k = (i - 1) * 4
      local T = tonumber(ARGV[a + 1])
      local burst = tonumber(ARGV[a + 2])
      local left = {-1, -1, -1}
      if T > 0 then
        local window = T * burst
        local ahead = 0
        local tat = read(k + 1)
        if tat and tat > now and tat - now <= window then ahead = tat - now end
        if need * T > window then
          refuse(i, 'rate', -1, burst, idiv(window - ahead, T), ahead)
        elseif ahead + need * T > window then
          refuse(i, 'rate', ceilms(ahead + need * T - window), burst, idiv(window - ahead, T), ahead)
        else
          bound(idiv(window - ahead, T))
          rates[i] = {T, window, ahead}
        end
      end
      left[2] = calendar(i, 'day', k + 2, tonumber(ARGV[a + 3]), dayReset)
      left[3] = calendar(i, 'month', k + 3, tonumber(ARGV[a + 4]), monthReset)
      lefts[i] = left
    end
    if worst ~= nil then
      if meterRefusal then meter('refused', 1) end
      return worst
    end

    local reply = {2}
    local bases = {}
    for i = 1, n do
      local a = 8 + (i - 1) * 5
      local k = (i - 1) * 4
      local rate, rateReset, base = -1, -1, -1
      local r = rates[i]
      if r then
        local T, window, ahead = r[1], r[2], r[3]
        -- The units used now are charged from the TAT; the held ones from `hold` ahead at the
        -- latest (within the window), so they stay usable that long: the gap only books the
        -- limit ahead, as used units would.
        local held = granted - usedNow
        local from = ahead + usedNow * T
        if held > 0 then from = math.max(from, math.min(hold, idiv(window, 2), window - held * T)) end
        local newAhead = from + held * T
        if granted > 0 then
          base = now + from
          redis.call('SET', KEYS[k + 1], int(now + newAhead), 'PX', int(ceilms(newAhead) + 1000))
        end
        rate = idiv(window - newAhead, T)
        rateReset = ceilms(newAhead)
      end
      local day, month = -1, -1
      if lefts[i][2] >= 0 then
        day = lefts[i][2] - granted
        if granted > 0 then count(KEYS[k + 2], granted, dayTTL) end
      end
      if lefts[i][3] >= 0 then
        month = lefts[i][3] - granted
        if granted > 0 then count(KEYS[k + 3], granted, monthTTL) end
      end
      reply[#reply + 1] = rate
      reply[#reply + 1] = rateReset
      reply[#reply + 1] = day
      reply[#reply + 1] = month
      reply[#reply + 1] = -1
      bases[i] = base
    end
    reply[#reply + 1] = granted
    for i = 1, n do reply[#reply + 1] = bases[i] end
    if usedNow > 0 then
      meter('requests', 1)
      meter('cost', usedNow)
    end
    return reply
    """#

    public static let leaseSHA = SHA1.hex(lease)
}
