//! The scaled mode's revocations: each is kept as `authbridge:revoked:{sid}`
//! until it no longer refuses a token, read back whole when a node (re)joins,
//! and applied from the signed notices on the channel.

use claims::{REVOKED_KEY_PREFIX, Revocation};
use redis::AsyncCommands as _;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

use super::RedisBackplane;
use crate::backplane::Unavailable;
use crate::revocations::Revoker;

impl RedisBackplane {
    pub(super) async fn record_revocation(&self, sid: &str, until: i64) -> Result<(), Unavailable> {
        // Already over: it refuses no token, so there is nothing to keep (and
        // Redis refuses an `EXAT` that is not positive: the API's `until` may
        // be 0 or negative).
        if until <= claims::unix_now() {
            return Ok(());
        }
        redis::cmd("SET")
            .arg(format!("{REVOKED_KEY_PREFIX}{sid}"))
            .arg(until)
            .arg("EXAT")
            .arg(until)
            .query_async::<()>(&mut self.pubsub.connection())
            .await
            .map_err(|error| {
                tracing::warn!(%error, "a revocation could not be recorded: nothing was published");
                Unavailable
            })
    }

    /// Applies each signed notice from the channel (a logout on any web node).
    pub(super) async fn apply_notices(mut notices: mpsc::Receiver<Vec<u8>>, revoker: Revoker) {
        while let Some(payload) = notices.recv().await {
            match std::str::from_utf8(&payload) {
                // A refused notice is logged where it is checked.
                Ok(notice) => {
                    let _ = revoker.apply_notice(notice).await;
                }
                Err(_) => tracing::warn!("a revocation notice on Redis is not UTF-8: ignored"),
            }
        }
    }

    /// Reads every `authbridge:revoked:*` key into this node's list; returns how
    /// many sessions are revoked.
    pub(super) async fn load_revocations(
        conn: &mut ConnectionManager,
        revoker: &Revoker,
    ) -> redis::RedisResult<usize> {
        let pattern = format!("{REVOKED_KEY_PREFIX}*");
        let mut cursor = 0_u64;
        let mut revoked = Vec::new();
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(conn)
                .await?;
            if !keys.is_empty() {
                let untils: Vec<Option<i64>> = conn.mget(&keys).await?;
                for (key, until) in keys.iter().zip(untils) {
                    if let (Some(sid), Some(until)) = (key.strip_prefix(REVOKED_KEY_PREFIX), until)
                    {
                        revoked.push(Revocation {
                            sid: sid.to_owned(),
                            until,
                        });
                    }
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        // Sessions ended while this node could not hear the channel.
        revoker.apply_list(&revoked).await;
        Ok(revoker.list.len())
    }
}
