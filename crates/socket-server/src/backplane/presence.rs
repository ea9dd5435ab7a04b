//! Presence in the scaled mode: every node's users and socket counts, summed
//! in Redis so that a query costs one or two commands, whatever the number of
//! sockets; and, with webhooks, the cluster's presence events.
//!
//! - `authbridge:presence:users`: user → sockets, cluster-wide (users without
//!   sockets have no field); `authbridge:presence:sockets`: the total.
//! - `authbridge:presence:node:{id}`: each node's share, so that it can be
//!   taken back when the node leaves — at a graceful shutdown by the node, or,
//!   when a node dies, by any other once the node's `alive` key (refreshed
//!   every second, expiring after 5) is gone.
//! - With webhooks: every change of a user's count is judged where it is made,
//!   atomically, in the scripts: 0 → more is `user.online` (unless the user is
//!   in `authbridge:presence:departing`, left within the grace time: then
//!   nothing), more → 0 puts the user there until the grace time is over, when
//!   (still without sockets) the user is `user.offline`. Events go to the
//!   stream `authbridge:webhooks:events`, bounded (the oldest dropped, counted).
//!
//! A node sends its changes as they come (batched); after any failure, and
//! whenever Redis comes back, it replaces its whole share with its own counts
//! ([`Presence::snapshot`]), which are the truth for its sockets.

use std::sync::Arc;
use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionManager;
use tokio::sync::{Notify, mpsc};

use crate::presence::{Change, Presence, Summary};

pub(super) const USERS: &str = "authbridge:presence:users";
const SOCKETS: &str = "authbridge:presence:sockets";
const NODES: &str = "authbridge:presence:nodes";
const NODE_PREFIX: &str = "authbridge:presence:node:";
const ALIVE_PREFIX: &str = "authbridge:presence:alive:";
/// Users whose last socket closed, by the end of their grace time (ms).
const DEPARTING: &str = "authbridge:presence:departing";
/// Presence events waiting for the webhook sender.
pub(super) const EVENTS: &str = "authbridge:webhooks:events";

/// A node whose `alive` key is this old is taken for dead.
pub(super) const ALIVE_SECS: u64 = 5;

/// Changes sent to Redis in one script call, at most.
const BATCH: usize = 1024;

/// What every script starts with. KEYS[1..4]: the users, the sockets, the
/// departing users, the events; ARGV[1]: the grace time in ms (-1: no
/// webhooks), ARGV[2]: the most events kept.
const PRELUDE: &str = r"
local USERS, SOCKETS, DEPARTING, EVENTS = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local GRACE, MAX = tonumber(ARGV[1]), tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local dropped = 0
local function event(kind, user, at)
  if redis.call('XLEN', EVENTS) >= MAX then
    redis.call('XTRIM', EVENTS, 'MAXLEN', MAX - 1)
    dropped = dropped + 1
  end
  redis.call('XADD', EVENTS, '*', 'kind', kind, 'user', user, 'at', at)
end
local function change(user, delta)
  local new = redis.call('HINCRBY', USERS, user, delta)
  local old = new - delta
  if new <= 0 then redis.call('HDEL', USERS, user) end
  if GRACE >= 0 then
    if old <= 0 and new > 0 then
      if redis.call('ZREM', DEPARTING, user) == 0 then event('user.online', user, now) end
    elseif old > 0 and new <= 0 then
      redis.call('ZADD', DEPARTING, now + GRACE, user)
    end
  end
end
local function take_back(share)
  local old = redis.call('HGETALL', share)
  local total = 0
  for i = 1, #old, 2 do
    local count = tonumber(old[i + 1])
    change(old[i], -count)
    total = total + count
  end
  redis.call('DEL', share)
  if redis.call('DECRBY', SOCKETS, total) < 0 then redis.call('SET', SOCKETS, 0) end
end
";

/// Adds changes (ARGV[4..]: user, delta pairs) to this node's share (KEYS[5])
/// and to the cluster's counts. Refuses (-1) when this node (ARGV[3]) is no
/// longer registered in KEYS[6] — another node took its share back, taking
/// it for dead — so that the node sends its whole share again instead.
fn apply_script() -> Script {
    Script::new(&format!(
        r"{PRELUDE}
if redis.call('SISMEMBER', KEYS[6], ARGV[3]) == 0 then return -1 end
local total = 0
for i = 4, #ARGV, 2 do
  local user, delta = ARGV[i], tonumber(ARGV[i + 1])
  if redis.call('HINCRBY', KEYS[5], user, delta) <= 0 then redis.call('HDEL', KEYS[5], user) end
  change(user, delta)
  total = total + delta
end
if redis.call('INCRBY', SOCKETS, total) < 0 then redis.call('SET', SOCKETS, 0) end
return dropped
"
    ))
}

/// Replaces this node's share (KEYS[5]) with ARGV[5..] (user, count pairs);
/// ARGV[4] is `join` (and the node, ARGV[3], stays registered in KEYS[6],
/// alive: KEYS[7]) or `leave`.
fn replace_script() -> Script {
    Script::new(&format!(
        r"{PRELUDE}
local share = {{}}
for i = 5, #ARGV, 2 do share[ARGV[i]] = tonumber(ARGV[i + 1]) end
-- The difference, user by user: a user on this node before and after is no
-- transition, whatever the counts were.
local old = redis.call('HGETALL', KEYS[5])
local total = 0
for i = 1, #old, 2 do
  local user, count = old[i], tonumber(old[i + 1])
  local delta = (share[user] or 0) - count
  if delta ~= 0 then change(user, delta) end
  total = total + delta
  share[user] = nil
end
for user, count in pairs(share) do
  change(user, count)
  total = total + count
end
redis.call('DEL', KEYS[5])
for i = 5, #ARGV, 2 do redis.call('HSET', KEYS[5], ARGV[i], ARGV[i + 1]) end
if redis.call('INCRBY', SOCKETS, total) < 0 then redis.call('SET', SOCKETS, 0) end
if ARGV[4] == 'join' then
  redis.call('SADD', KEYS[6], ARGV[3])
  redis.call('SET', KEYS[7], 1, 'EX', {ALIVE_SECS})
else
  redis.call('SREM', KEYS[6], ARGV[3])
  redis.call('DEL', KEYS[7])
end
return dropped
"
    ))
}

/// Takes back the share of every node registered in KEYS[5] whose `alive`
/// key is gone (ARGV[3], ARGV[4]: the share and alive key prefixes); then
/// sends `user.offline` for every departing user whose grace time is over and
/// who has no socket. Returns {{nodes taken back, events dropped}}.
fn watch_script() -> Script {
    Script::new(&format!(
        r"{PRELUDE}
local reaped = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  if redis.call('EXISTS', ARGV[4] .. id) == 0 then
    take_back(ARGV[3] .. id)
    redis.call('SREM', KEYS[5], id)
    reaped = reaped + 1
  end
end
if GRACE >= 0 then
  local due = redis.call('ZRANGEBYSCORE', DEPARTING, '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1000)
  for i = 1, #due, 2 do
    local user = due[i]
    redis.call('ZREM', DEPARTING, user)
    if tonumber(redis.call('HGET', USERS, user) or '0') <= 0 then
      event('user.offline', user, tonumber(due[i + 1]) - GRACE)
    end
  end
end
return {{reaped, dropped}}
"
    ))
}

/// This node's presence in Redis.
#[derive(Debug)]
pub(super) struct RedisPresence {
    node: String,
    share: String,
    alive: String,
    /// The grace time in ms; -1 without webhooks (no events are made).
    grace_ms: i64,
    max_events: usize,
    apply: Script,
    replace: Script,
    watch: Script,
    /// Set when the whole share must be sent again.
    resync: Notify,
    /// Events dropped by this node's scripts (the queue was full).
    pub(super) dropped: std::sync::atomic::AtomicU64,
}

impl RedisPresence {
    pub(super) fn new(node: &str, grace: Option<Duration>, max_events: usize) -> Self {
        Self {
            node: node.to_owned(),
            share: format!("{NODE_PREFIX}{node}"),
            alive: format!("{ALIVE_PREFIX}{node}"),
            grace_ms: grace.map_or(-1, |grace| {
                i64::try_from(grace.as_millis()).unwrap_or(i64::MAX)
            }),
            max_events,
            apply: apply_script(),
            replace: replace_script(),
            watch: watch_script(),
            resync: Notify::new(),
            dropped: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Asks the sync task to send the whole share again (Redis is back).
    pub(super) fn resync(&self) {
        self.resync.notify_one();
    }

    /// Sends this node's changes for as long as the node runs: its whole share
    /// first, then each batch of changes; the whole share again after a
    /// failure or when asked.
    pub(super) async fn sync(
        self: Arc<Self>,
        mut conn: ConnectionManager,
        presence: Arc<Presence>,
        mut feed: mpsc::UnboundedReceiver<Change>,
    ) {
        let mut whole = true;
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            if whole {
                let share = presence.snapshot(&mut feed);
                match self.replace(&mut conn, &share, true).await {
                    Ok(()) => whole = false,
                    Err(error) => {
                        tracing::debug!(%error, "presence not sent yet: waiting for Redis");
                        // The watch asks again when Redis is back; retry
                        // anyway now and then.
                        let _ =
                            tokio::time::timeout(Duration::from_secs(1), self.resync.notified())
                                .await;
                    }
                }
                continue;
            }
            tokio::select! {
                received = feed.recv_many(&mut batch, BATCH) => {
                    if received == 0 {
                        return;
                    }
                    if let Err(error) = self.apply(&mut conn, &batch).await {
                        tracing::debug!(%error, "presence changes not sent: the whole share goes again");
                        whole = true;
                    }
                    batch.clear();
                }
                () = self.resync.notified() => whole = true,
            }
        }
    }

    fn invocation<'a>(&self, script: &'a Script) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation
            .key(USERS)
            .key(SOCKETS)
            .key(DEPARTING)
            .key(EVENTS)
            .arg(self.grace_ms)
            .arg(self.max_events);
        invocation
    }

    fn count_dropped(&self, dropped: u64) {
        if dropped > 0 {
            self.dropped
                .fetch_add(dropped, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                dropped,
                pending = self.max_events,
                "webhook queue full: the oldest pending presence events were dropped"
            );
        }
    }

    async fn apply(
        &self,
        conn: &mut ConnectionManager,
        changes: &[Change],
    ) -> redis::RedisResult<()> {
        let mut invocation = self.invocation(&self.apply);
        invocation.key(&self.share).key(NODES).arg(&self.node);
        for change in changes {
            invocation.arg(&*change.user).arg(change.delta);
        }
        let dropped: i64 = invocation.invoke_async(conn).await?;
        if dropped < 0 {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "this node's presence was taken for dead",
            )));
        }
        self.count_dropped(dropped.unsigned_abs());
        Ok(())
    }

    async fn replace(
        &self,
        conn: &mut ConnectionManager,
        share: &[(Arc<str>, u64)],
        join: bool,
    ) -> redis::RedisResult<()> {
        let mut invocation = self.invocation(&self.replace);
        invocation
            .key(&self.share)
            .key(NODES)
            .key(&self.alive)
            .arg(&self.node)
            .arg(if join { "join" } else { "leave" });
        for (user, count) in share {
            invocation.arg(&**user).arg(*count);
        }
        let dropped: u64 = invocation.invoke_async(conn).await?;
        self.count_dropped(dropped);
        Ok(())
    }

    /// Keeps this node alive, takes back the share of nodes that are not, and
    /// sends the `user.offline` events whose grace time is over.
    pub(super) async fn heartbeat(&self, conn: &mut ConnectionManager) -> redis::RedisResult<()> {
        let (): () = redis::cmd("SET")
            .arg(&self.alive)
            .arg(1)
            .arg("EX")
            .arg(ALIVE_SECS)
            .query_async(conn)
            .await?;
        let mut invocation = self.invocation(&self.watch);
        invocation.key(NODES).arg(NODE_PREFIX).arg(ALIVE_PREFIX);
        let (reaped, dropped): (u64, u64) = invocation.invoke_async(conn).await?;
        if reaped > 0 {
            tracing::info!(
                nodes = reaped,
                "presence of nodes gone silent taken out of the counts"
            );
        }
        self.count_dropped(dropped);
        Ok(())
    }

    /// Takes this node's share out at once (a graceful shutdown).
    pub(super) async fn leave(&self, conn: &mut ConnectionManager) -> redis::RedisResult<()> {
        self.replace(conn, &[], false).await
    }
}

pub(super) async fn summary(conn: &mut ConnectionManager) -> redis::RedisResult<Summary> {
    let (users, sockets): (u64, Option<i64>) = redis::pipe()
        .cmd("HLEN")
        .arg(USERS)
        .cmd("GET")
        .arg(SOCKETS)
        .query_async(conn)
        .await?;
    Ok(Summary {
        users,
        sockets: u64::try_from(sockets.unwrap_or(0)).unwrap_or(0),
    })
}

pub(super) async fn sockets_of(
    conn: &mut ConnectionManager,
    user: &str,
) -> redis::RedisResult<u64> {
    let count: Option<i64> = redis::cmd("HGET")
        .arg(USERS)
        .arg(user)
        .query_async(conn)
        .await?;
    Ok(u64::try_from(count.unwrap_or(0)).unwrap_or(0))
}
