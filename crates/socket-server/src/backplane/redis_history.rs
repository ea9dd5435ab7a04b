//! Recovery in the scaled mode: the history of events per target as Redis
//! streams (`authbridge:history:{target}`, entry id = offset, bounded by
//! count, expiring when idle for the window), one counter giving offsets, and
//! the sessions of disconnected sockets (`authbridge:recovery:{pid}`), so a
//! client recovers on any node, and after a node's restart.
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

/// KEYS[1]: the offset counter. ARGV: the most events per target, the window
/// in ms, the channel, the published payload after its offset, the entry,
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

/// Takes a session (KEYS[1]) when it is the user's (ARGV[1]).
const TAKE: &str = r"
local json = redis.call('GET', KEYS[1])
if json and cjson.decode(json).user == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return json
end
return false
";

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
}

impl RedisHistory {
    pub(super) fn new(config: RecoveryConfig) -> Self {
        Self {
            config,
            script: Script::new(RECORD_AND_PUBLISH),
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
            .arg(u64::try_from(self.config.window.as_millis()).unwrap_or(u64::MAX))
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

    pub(super) async fn save(
        conn: &mut ConnectionManager,
        session: &Session,
        ttl: std::time::Duration,
    ) -> redis::RedisResult<()> {
        let json = serde_json::to_string(session).unwrap_or_default();
        redis::cmd("SET")
            .arg(format!("{SESSION_PREFIX}{}", session.pid))
            .arg(json)
            .arg("PX")
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
            .query_async(conn)
            .await
    }

    /// The session of `pid` if it is `user`'s, taken (a `pid` recovers once;
    /// the recovered socket stores itself again); another user's stays.
    pub(super) async fn take(
        conn: &mut ConnectionManager,
        pid: &str,
        user: &str,
    ) -> redis::RedisResult<Option<Session>> {
        let json: Option<String> = Script::new(TAKE)
            .key(format!("{SESSION_PREFIX}{pid}"))
            .arg(user)
            .invoke_async(conn)
            .await?;
        Ok(json.and_then(|json| serde_json::from_str(&json).ok()))
    }

    pub(super) async fn forget(conn: &mut ConnectionManager, pid: &str) -> redis::RedisResult<()> {
        redis::cmd("DEL")
            .arg(format!("{SESSION_PREFIX}{pid}"))
            .query_async(conn)
            .await
    }
}
