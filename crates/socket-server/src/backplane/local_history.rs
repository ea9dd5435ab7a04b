//! Recovery in the embedded mode: the history of events per target and the
//! sessions of disconnected sockets, in memory. Offsets are given in the
//! order events are emitted (under one lock), so a socket sees them rising.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::time::Instant;

use crate::recovery::{Missed, RecoveryConfig, Session};

#[derive(Debug)]
pub(super) struct LocalHistory {
    config: RecoveryConfig,
    /// Held while an event is given its offset and emitted.
    pub(super) history: tokio::sync::Mutex<History>,
    sessions: Mutex<Sessions>,
    last_size: std::sync::atomic::AtomicU64,
}

/// Sessions by `pid`, each with the socket that owns it and until when it is
/// kept.
#[derive(Debug, Default)]
struct Sessions {
    by_pid: HashMap<String, Kept>,
    swept: Option<Instant>,
}

#[derive(Debug)]
struct Kept {
    session: Session,
    owner: String,
    until: Instant,
}

#[derive(Debug, Default)]
pub(super) struct History {
    last: u64,
    /// Entries kept, over every target.
    size: u64,
    targets: HashMap<String, Target>,
    swept: Option<Instant>,
}

#[derive(Debug, Default)]
struct Target {
    entries: VecDeque<(Instant, Arc<Missed>)>,
    /// The newest offset dropped to keep the count, and when: a client from
    /// before it cannot be given everything.
    trimmed: Option<(u64, Instant)>,
}

impl LocalHistory {
    pub(super) fn new(config: RecoveryConfig) -> Self {
        Self {
            config,
            history: tokio::sync::Mutex::default(),
            sessions: Mutex::default(),
            last_size: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The newest offset given.
    pub(super) async fn current(&self) -> u64 {
        self.history.lock().await.last
    }

    pub(super) async fn missed(&self, targets: &[String], after: u64) -> Option<Vec<Missed>> {
        let history = self.history.lock().await;
        let mut missed = BTreeMap::new();
        for name in targets {
            let Some(target) = history.targets.get(name) else {
                continue;
            };
            if target.trimmed.is_some_and(|(trimmed, _)| trimmed > after) {
                return None;
            }
            for (_, entry) in target.entries.iter().rev() {
                if entry.offset <= after {
                    break;
                }
                missed.insert(entry.offset, Missed::clone(entry));
            }
        }
        Some(missed.into_values().collect())
    }

    /// Keeps `sessions` for `ttl`, each unless another socket took it.
    pub(super) fn save(&self, sessions: &[(String, Session)], ttl: std::time::Duration) {
        let now = Instant::now();
        let mut kept = self.sessions();
        // At most once a second: what expired goes.
        if kept
            .swept
            .is_none_or(|swept| now.duration_since(swept) >= std::time::Duration::from_secs(1))
        {
            kept.swept = Some(now);
            kept.by_pid.retain(|_, kept| kept.until > now);
        }
        for (owner, session) in sessions {
            if let Some(now_kept) = kept.by_pid.get(&session.pid)
                && now_kept.owner != *owner
                && now_kept.until > now
            {
                continue;
            }
            kept.by_pid.insert(
                session.pid.clone(),
                Kept {
                    session: session.clone(),
                    owner: owner.clone(),
                    until: now + ttl,
                },
            );
        }
    }

    /// The session of `pid` if it is `user`'s and still kept, taken by the
    /// socket `taker` (only it saves the session from now on); another
    /// user's stays untouched.
    pub(super) fn take(&self, pid: &str, user: &str, taker: &str) -> Option<Session> {
        let mut sessions = self.sessions();
        let kept = sessions.by_pid.get_mut(pid)?;
        if kept.session.user != user || kept.until <= Instant::now() {
            return None;
        }
        taker.clone_into(&mut kept.owner);
        Some(kept.session.clone())
    }

    /// Forgets the session of `pid` if `owner` still owns it.
    pub(super) fn forget(&self, pid: &str, owner: &str) {
        let mut sessions = self.sessions();
        if sessions
            .by_pid
            .get(pid)
            .is_some_and(|kept| kept.owner == owner)
        {
            sessions.by_pid.remove(pid);
        }
    }

    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl History {
    /// Gives the next offset to an event for `targets` and keeps it.
    pub(super) fn record(
        &mut self,
        config: &RecoveryConfig,
        targets: &[String],
        event: &str,
        data: &serde_json::value::RawValue,
    ) -> u64 {
        self.last += 1;
        let now = Instant::now();
        let entry = Arc::new(Missed {
            offset: self.last,
            event: event.to_owned(),
            data: data.to_owned(),
        });
        for name in targets {
            let target = self.targets.entry(name.clone()).or_default();
            target.entries.push_back((now, entry.clone()));
            self.size += 1;
            while target.entries.len() > config.max_events {
                if let Some((_, dropped)) = target.entries.pop_front() {
                    target.trimmed = Some((dropped.offset, now));
                    self.size -= 1;
                }
            }
        }
        self.sweep(config, now);
        self.last
    }

    /// At most once a second: entries kept longer than the history's time go
    /// (no session that may be owed them is left), and targets left empty
    /// once the mark of their trimmed entries is that old too.
    fn sweep(&mut self, config: &RecoveryConfig, now: Instant) {
        if self
            .swept
            .is_some_and(|swept| now.duration_since(swept) < std::time::Duration::from_secs(1))
        {
            return;
        }
        self.swept = Some(now);
        let keep = config.history_ttl();
        let size = &mut self.size;
        self.targets.retain(|_, target| {
            while target
                .entries
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) > keep)
            {
                target.entries.pop_front();
                *size -= 1;
            }
            if target
                .trimmed
                .is_some_and(|(_, at)| now.duration_since(at) > keep)
            {
                target.trimmed = None;
            }
            !target.entries.is_empty() || target.trimmed.is_some()
        });
    }
}

impl LocalHistory {
    pub(super) fn config(&self) -> &RecoveryConfig {
        &self.config
    }

    /// Entries kept, over every target (while an event is being kept, as
    /// last counted).
    pub(super) fn size(&self) -> u64 {
        if let Ok(history) = self.history.try_lock() {
            self.last_size
                .store(history.size, std::sync::atomic::Ordering::Relaxed);
        }
        self.last_size.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::value::RawValue;

    use super::*;

    fn data() -> Box<RawValue> {
        RawValue::from_string("1".into()).expect("json")
    }

    #[tokio::test]
    async fn what_was_missed_comes_back_in_order_once_and_a_trimmed_history_says_so() {
        let config = RecoveryConfig {
            window: Duration::from_secs(120),
            max_events: 3,
        };
        let history = LocalHistory::new(config);
        {
            let mut h = history.history.lock().await;
            h.record(&config, &["user:a".into(), "room:r".into()], "e1", &data());
            h.record(&config, &["everyone".into()], "e2", &data());
            h.record(&config, &["user:b".into()], "e3", &data());
            h.record(&config, &["room:r".into()], "e4", &data());
        }
        let targets = [
            "everyone".to_owned(),
            "user:a".to_owned(),
            "room:r".to_owned(),
        ];
        let missed = history.missed(&targets, 0).await.expect("all kept");
        let events: Vec<_> = missed
            .iter()
            .map(|m| (m.offset, m.event.as_str()))
            .collect();
        assert_eq!(
            events,
            [(1, "e1"), (2, "e2"), (4, "e4")],
            "once each, in order"
        );
        let after_two = history.missed(&targets, 2).await.expect("kept");
        assert_eq!(after_two.len(), 1);
        {
            let mut h = history.history.lock().await;
            for _ in 0..3 {
                h.record(&config, &["room:r".into()], "more", &data());
            }
        }
        assert!(
            history.missed(&targets, 1).await.is_none(),
            "room:r lost offset 4"
        );
        assert!(history.missed(&targets, 4).await.is_some());
        assert_eq!(history.current().await, 7);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_target_and_its_trimmed_mark_go_once_no_session_can_be_owed_them() {
        let config = RecoveryConfig {
            window: Duration::from_secs(5),
            max_events: 1,
        };
        let history = LocalHistory::new(config);
        {
            let mut h = history.history.lock().await;
            h.record(&config, &["room:r".into()], "e1", &data());
            h.record(&config, &["room:r".into()], "e2", &data());
        }
        assert!(
            history.missed(&["room:r".into()], 0).await.is_none(),
            "e1 trimmed"
        );
        tokio::time::advance(config.history_ttl() - Duration::from_secs(1)).await;
        {
            let mut h = history.history.lock().await;
            h.record(&config, &["other".into()], "e3", &data());
            assert!(h.targets.contains_key("room:r"), "still owed to someone");
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        let mut h = history.history.lock().await;
        h.record(&config, &["other".into()], "e4", &data());
        assert!(!h.targets.contains_key("room:r"), "gone, mark and all");
        assert_eq!(h.size, 1);
    }

    #[test]
    fn a_session_is_taken_by_one_socket_and_only_in_time() {
        let history = LocalHistory::new(RecoveryConfig {
            window: Duration::from_secs(120),
            max_events: 10,
        });
        let session = Session {
            pid: "p".into(),
            user: "a".into(),
            session_id: None,
            public_sid: "s".into(),
            rooms: Vec::new(),
            since: 0,
        };
        history.save(&[("old".into(), session.clone())], Duration::from_secs(60));
        assert_eq!(history.take("p", "b", "x"), None, "another user's");
        assert_eq!(
            history.take("p", "a", "new"),
            Some(session.clone()),
            "still there"
        );
        let mut stale = session.clone();
        stale.rooms = vec!["left:since".into()];
        history.save(&[("old".into(), stale)], Duration::from_secs(60));
        assert_eq!(
            history.take("p", "a", "newer"),
            Some(session.clone()),
            "the socket it was taken from writes it no more"
        );
        history.save(&[("newer".into(), session.clone())], Duration::ZERO);
        assert_eq!(history.take("p", "a", "x"), None, "too late");
        history.save(
            &[("anyone".into(), session.clone())],
            Duration::from_secs(60),
        );
        assert_eq!(history.take("p", "a", "taker"), Some(session.clone()));
        history.forget("p", "anyone");
        assert!(
            history.take("p", "a", "taker").is_some(),
            "not the owner's to forget"
        );
        history.forget("p", "taker");
        assert_eq!(history.take("p", "a", "x"), None, "forgotten");
    }
}
