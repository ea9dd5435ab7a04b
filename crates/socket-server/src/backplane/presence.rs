//! Presence in the scaled mode: every node's users and socket counts, summed
//! in Redis so that a query costs one or two commands, whatever the number of
//! sockets.
//!
//! - `authbridge:presence:users`: user → sockets, cluster-wide (users without
//!   sockets have no field); `authbridge:presence:sockets`: the total.
//! - `authbridge:presence:node:{id}`: each node's share, so that it can be
//!   taken back when the node leaves — at a graceful shutdown by the node, or,
//!   when a node dies, by any other once the node's `alive` key (refreshed
//!   every second, expiring after 5) is gone.
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

/// A node whose `alive` key is this old is taken for dead.
pub(super) const ALIVE_SECS: u64 = 5;

/// Changes sent to Redis in one script call, at most.
const BATCH: usize = 1024;

/// Adds changes to this node's share and to the cluster's counts. Refuses
/// (returns -1) when this node is no longer registered — another node took
/// its share back, taking it for dead — so that the node sends its whole share
/// again instead.
const APPLY: &str = r"
if redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 0 then return -1 end
local total = 0
for i = 2, #ARGV, 2 do
  local user, delta = ARGV[i], tonumber(ARGV[i + 1])
  if redis.call('HINCRBY', KEYS[3], user, delta) <= 0 then redis.call('HDEL', KEYS[3], user) end
  if redis.call('HINCRBY', KEYS[1], user, delta) <= 0 then redis.call('HDEL', KEYS[1], user) end
  total = total + delta
end
if redis.call('INCRBY', KEYS[2], total) < 0 then redis.call('SET', KEYS[2], 0) end
return 1
";

/// Takes a node's share out of the cluster's counts (KEYS[3]: its hash).
const TAKE_BACK: &str = r"
local function take_back(users, sockets, share)
  local old = redis.call('HGETALL', share)
  local total = 0
  for i = 1, #old, 2 do
    local count = tonumber(old[i + 1])
    if redis.call('HINCRBY', users, old[i], -count) <= 0 then redis.call('HDEL', users, old[i]) end
    total = total + count
  end
  redis.call('DEL', share)
  if redis.call('DECRBY', sockets, total) < 0 then redis.call('SET', sockets, 0) end
end
";

/// Replaces this node's share with ARGV[3..] (user, count pairs); ARGV[2] is
/// `join` (and the node stays registered, alive) or `leave`.
fn replace_script() -> Script {
    Script::new(&format!(
        r"{TAKE_BACK}
take_back(KEYS[1], KEYS[2], KEYS[3])
local total = 0
for i = 3, #ARGV, 2 do
  local count = tonumber(ARGV[i + 1])
  redis.call('HSET', KEYS[3], ARGV[i], count)
  redis.call('HINCRBY', KEYS[1], ARGV[i], count)
  total = total + count
end
redis.call('INCRBY', KEYS[2], total)
if ARGV[2] == 'join' then
  redis.call('SADD', KEYS[4], ARGV[1])
  redis.call('SET', KEYS[5], 1, 'EX', {ALIVE_SECS})
else
  redis.call('SREM', KEYS[4], ARGV[1])
  redis.call('DEL', KEYS[5])
end
return 1
"
    ))
}

/// Takes back the share of every registered node whose `alive` key is gone;
/// returns how many.
fn reap_script() -> Script {
    Script::new(&format!(
        r"{TAKE_BACK}
local reaped = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if redis.call('EXISTS', ARGV[2] .. id) == 0 then
    take_back(KEYS[1], KEYS[2], ARGV[1] .. id)
    redis.call('SREM', KEYS[3], id)
    reaped = reaped + 1
  end
end
return reaped
"
    ))
}

/// This node's presence in Redis.
#[derive(Debug)]
pub(super) struct RedisPresence {
    node: String,
    share: String,
    alive: String,
    apply: Script,
    replace: Script,
    reap: Script,
    /// Set when the whole share must be sent again.
    resync: Notify,
}

impl RedisPresence {
    pub(super) fn new(node: &str) -> Self {
        Self {
            node: node.to_owned(),
            share: format!("{NODE_PREFIX}{node}"),
            alive: format!("{ALIVE_PREFIX}{node}"),
            apply: Script::new(APPLY),
            replace: replace_script(),
            reap: reap_script(),
            resync: Notify::new(),
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

    async fn apply(
        &self,
        conn: &mut ConnectionManager,
        changes: &[Change],
    ) -> redis::RedisResult<()> {
        let mut invocation = self.apply.prepare_invoke();
        invocation
            .key(USERS)
            .key(SOCKETS)
            .key(&self.share)
            .key(NODES)
            .arg(&self.node);
        for change in changes {
            invocation.arg(&*change.user).arg(change.delta);
        }
        let applied: i64 = invocation.invoke_async(conn).await?;
        if applied < 0 {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "this node's presence was taken for dead",
            )));
        }
        Ok(())
    }

    async fn replace(
        &self,
        conn: &mut ConnectionManager,
        share: &[(Arc<str>, u64)],
        join: bool,
    ) -> redis::RedisResult<()> {
        let mut invocation = self.replace.prepare_invoke();
        invocation
            .key(USERS)
            .key(SOCKETS)
            .key(&self.share)
            .key(NODES)
            .key(&self.alive)
            .arg(&self.node)
            .arg(if join { "join" } else { "leave" });
        for (user, count) in share {
            invocation.arg(&**user).arg(*count);
        }
        invocation.invoke_async::<i64>(conn).await.map(drop)
    }

    /// Keeps this node alive, and takes back the share of nodes that are not.
    pub(super) async fn heartbeat(&self, conn: &mut ConnectionManager) -> redis::RedisResult<()> {
        let (): () = redis::cmd("SET")
            .arg(&self.alive)
            .arg(1)
            .arg("EX")
            .arg(ALIVE_SECS)
            .query_async(conn)
            .await?;
        let reaped: i64 = self
            .reap
            .key(USERS)
            .key(SOCKETS)
            .key(NODES)
            .arg(NODE_PREFIX)
            .arg(ALIVE_PREFIX)
            .invoke_async(conn)
            .await?;
        if reaped > 0 {
            tracing::info!(
                nodes = reaped,
                "presence of nodes gone silent taken out of the counts"
            );
        }
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
