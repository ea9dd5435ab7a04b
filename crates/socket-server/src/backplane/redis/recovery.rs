//! The scaled mode's part in connection state recovery: the history's offset,
//! what a client missed, and the sessions, all kept by
//! [`super::super::redis_history`] in Redis.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::RedisBackplane;
use crate::backplane::Unavailable;

impl RedisBackplane {
    /// The history's entries as the watch last counted them.
    pub(in crate::backplane) fn history_size(&self) -> u64 {
        self.history_size.load(Ordering::Relaxed)
    }

    pub(in crate::backplane) async fn current_offset(&self) -> Result<u64, Unavailable> {
        crate::backplane::redis_history::RedisHistory::current(&mut self.pubsub.connection())
            .await
            .map_err(|_| Unavailable)
    }

    pub(in crate::backplane) async fn missed(
        &self,
        targets: &[String],
        after: u64,
    ) -> Result<Option<Vec<crate::recovery::Missed>>, Unavailable> {
        crate::backplane::redis_history::RedisHistory::missed(
            &mut self.pubsub.connection(),
            targets,
            after,
        )
        .await
        .map_err(|_| Unavailable)
    }

    pub(in crate::backplane) async fn save_sessions(
        &self,
        sessions: &[(String, crate::recovery::Session)],
        ttl: Duration,
    ) -> Result<(), Unavailable> {
        let Some(history) = &self.history else {
            return Ok(());
        };
        history
            .save(&mut self.pubsub.connection(), sessions, ttl)
            .await
            .map_err(|_| Unavailable)
    }

    pub(in crate::backplane) async fn take_session(
        &self,
        pid: &str,
        user: &str,
        taker: &str,
    ) -> Result<Option<crate::recovery::Session>, Unavailable> {
        let Some(history) = &self.history else {
            return Ok(None);
        };
        history
            .take(&mut self.pubsub.connection(), pid, user, taker)
            .await
            .map_err(|_| Unavailable)
    }

    pub(in crate::backplane) async fn forget_session(&self, pid: &str, owner: &str) {
        if let Some(history) = &self.history {
            let _ = history
                .forget(&mut self.pubsub.connection(), pid, owner)
                .await;
        }
    }
}
