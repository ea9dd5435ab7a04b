//! Recovery in the scaled mode: the history of events per target as Redis
//! streams (`authbridge:history:{target}`, entry id = offset, bounded by
//! count, expiring when idle for [`RecoveryConfig::history_ttl`]), one counter
//! giving offsets, and the sessions of recovering sockets
//! (`authbridge:recovery:{pid}`, a hash: the session and the socket that owns
//! it), so a client recovers on any node, and after a node's restart.
//!
//! An event gets its offset, enters the history and is published on the
//! event channel in one script: offsets rise in the order Redis relays the
//! events to the nodes.

use std::collections::{BTreeMap, HashMap};

use redis::Script;
use redis::aio::ConnectionManager;

use crate::recovery::{Missed, RecoveryConfig, Session};

const OFFSET: &str = "authbridge:history:offset";
const STREAM_PREFIX: &str = "authbridge:history:";
const TRIMMED_PREFIX: &str = "authbridge:history:trimmed:";
const SESSION_PREFIX: &str = "authbridge:recovery:";

/// KEYS[1]: the offset counter. ARGV: the most events per target, how long
/// the history is kept in ms, the channel, the published payload after its offset, the entry,
/// then the targets. Returns the offset and how many nodes got it.
const RECORD_AND_PUBLISH: &str = r#"
local offset = redis.call('INCR', KEYS[1])
local max, window = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 6, #ARGV do
  local stream = 'authbridge:history:' .. ARGV[i]
  redis.call('XADD', stream, offset .. '-0', 'e', ARGV[5])
  if redis.call('XLEN', stream) > max then
    local oldest = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1][1]
    redis.call('XDEL', stream, oldest)
    redis.call('SET', 'authbridge:history:trimmed:' .. ARGV[i], string.match(oldest, '^(%d+)'), 'PX', window)
  end
  redis.call('PEXPIRE', stream, window)
end
local receivers = redis.call('PUBLISH', ARGV[3], '{"offset":' .. offset .. ',' .. ARGV[4])
return {offset, receivers}
"#;

/// Takes a session (KEYS[1]) when it is the user's (ARGV[1]): the socket
/// ARGV[2] owns it from now on, so the one it was taken from (a transport
/// that died unseen on another node) can no longer write it.
const TAKE: &str = r"
local json = redis.call('HGET', KEYS[1], 's')
if json and cjson.decode(json).user == ARGV[1] then
  redis.call('HSET', KEYS[1], 'o', ARGV[2])
  return json
end
return false
";

/// Saves sessions (KEYS) unless another socket owns them now. ARGV: the time
/// to keep them in ms, then an owner and a session per key.
const SAVE: &str = r"
local ttl = ARGV[1]
for i, key in ipairs(KEYS) do
  local owner = ARGV[2 * i]
  local now = redis.call('HGET', key, 'o')
  if not now or now == owner then
    redis.call('HSET', key, 'o', owner, 's', ARGV[2 * i + 1])
    redis.call('PEXPIRE', key, ttl)
  end
end
return 0
";

/// Deletes a session (KEYS[1]) if the socket ARGV[1] still owns it.
const FORGET: &str = r"
if redis.call('HGET', KEYS[1], 'o') == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 0
";

/// Sessions saved in one script call.
const SAVE_BATCH: usize = 500;

/// What an event is kept as in a stream entry.
#[derive(serde::Serialize, serde::Deserialize)]
struct Kept<'a> {
    event: &'a str,
    data: &'a serde_json::value::RawValue,
}

#[derive(Debug)]
pub(super) struct RedisHistory {
    config: RecoveryConfig,
    script: Script,
    save: Script,
    take: Script,
    forget: Script,
}

impl RedisHistory {
    pub(super) fn new(config: RecoveryConfig) -> Self {
        Self {
            config,
            script: Script::new(RECORD_AND_PUBLISH),
            save: Script::new(SAVE),
            take: Script::new(TAKE),
            forget: Script::new(FORGET),
        }
    }

    /// Gives the event its offset, keeps it under `targets`, and publishes
    /// `payload` (a JSON object without its first `{`) with `"offset"` first.
    pub(super) async fn record_and_publish(
        &self,
        conn: &mut ConnectionManager,
        channel: &str,
        payload_rest: &str,
        targets: &[String],
        event: &str,
        data: &serde_json::value::RawValue,
    ) -> redis::RedisResult<(u64, u64)> {
        let kept = serde_json::to_string(&Kept { event, data }).unwrap_or_default();
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(OFFSET)
            .arg(self.config.max_events)
            .arg(millis(self.config.history_ttl()))
            .arg(channel)
            .arg(payload_rest)
            .arg(kept);
        for target in targets {
            invocation.arg(target);
        }
        invocation.invoke_async(conn).await
    }

    pub(super) async fn current(conn: &mut ConnectionManager) -> redis::RedisResult<u64> {
        let offset: Option<u64> = redis::cmd("GET").arg(OFFSET).query_async(conn).await?;
        Ok(offset.unwrap_or(0))
    }

    /// Everything after `after` for `targets`, in order, once each; `None`
    /// when some of it was trimmed away.
    pub(super) async fn missed(
        conn: &mut ConnectionManager,
        targets: &[String],
        after: u64,
    ) -> redis::RedisResult<Option<Vec<Missed>>> {
        let mut pipe = redis::pipe();
        for target in targets {
            pipe.cmd("GET").arg(format!("{TRIMMED_PREFIX}{target}"));
            pipe.cmd("XRANGE")
                .arg(format!("{STREAM_PREFIX}{target}"))
                .arg(format!("{}-0", after.saturating_add(1)))
                .arg("+");
        }
        let answers: Vec<redis::Value> = pipe.query_async(conn).await?;
        let mut missed = BTreeMap::new();
        for pair in answers.chunks(2) {
            let [trimmed, entries] = pair else { continue };
            let trimmed: Option<u64> = redis::from_redis_value(trimmed.clone())?;
            if trimmed.is_some_and(|trimmed| trimmed > after) {
                return Ok(None);
            }
            let entries: Vec<(String, HashMap<String, String>)> =
                redis::from_redis_value(entries.clone())?;
            for (id, fields) in entries {
                let Some(offset) = id.split('-').next().and_then(|o| o.parse::<u64>().ok()) else {
                    continue;
                };
                let Some(kept) = fields.get("e") else {
                    continue;
                };
                if let Ok(kept) = serde_json::from_str::<Kept<'_>>(kept) {
                    missed.insert(
                        offset,
                        Missed {
                            offset,
                            event: kept.event.to_owned(),
                            data: kept.data.to_owned(),
                        },
                    );
                }
            }
        }
        Ok(Some(missed.into_values().collect()))
    }

    /// Entries kept, over every target (a scan: for a gauge, now and then).
    pub(super) async fn size(conn: &mut ConnectionManager) -> redis::RedisResult<u64> {
        let mut cursor = 0_u64;
        let mut size = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{STREAM_PREFIX}*"))
                .arg("TYPE")
                .arg("stream")
                .arg("COUNT")
                .arg(1000)
                .query_async(conn)
                .await?;
            if !keys.is_empty() {
                let mut pipe = redis::pipe();
                for key in &keys {
                    pipe.cmd("XLEN").arg(key);
                }
                let lengths: Vec<u64> = pipe.query_async(conn).await?;
                size += lengths.iter().sum::<u64>();
            }
            if next == 0 {
                return Ok(size);
            }
            cursor = next;
        }
    }

    /// Saves `sessions` (each with the socket that owns it) unless another
    /// socket took them meanwhile.
    pub(super) async fn save(
        &self,
        conn: &mut ConnectionManager,
        sessions: &[(String, Session)],
        ttl: std::time::Duration,
    ) -> redis::RedisResult<()> {
        for batch in sessions.chunks(SAVE_BATCH) {
            let mut invocation = self.save.prepare_invoke();
            invocation.arg(millis(ttl).max(1));
            for (owner, session) in batch {
                invocation
                    .key(format!("{SESSION_PREFIX}{}", session.pid))
                    .arg(owner)
                    .arg(serde_json::to_string(session).unwrap_or_default());
            }
            invocation.invoke_async::<()>(conn).await?;
        }
        Ok(())
    }

    /// The session of `pid` if it is `user`'s, taken by the socket `taker`
    /// (which saves it as its own once connected); another user's stays
    /// untouched.
    pub(super) async fn take(
        &self,
        conn: &mut ConnectionManager,
        pid: &str,
        user: &str,
        taker: &str,
    ) -> redis::RedisResult<Option<Session>> {
        let json: Option<String> = self
            .take
            .key(format!("{SESSION_PREFIX}{pid}"))
            .arg(user)
            .arg(taker)
            .invoke_async(conn)
            .await?;
        Ok(json.and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// Forgets the session of `pid` if `owner` still owns it.
    pub(super) async fn forget(
        &self,
        conn: &mut ConnectionManager,
        pid: &str,
        owner: &str,
    ) -> redis::RedisResult<()> {
        self.forget
            .key(format!("{SESSION_PREFIX}{pid}"))
            .arg(owner)
            .invoke_async(conn)
            .await
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
