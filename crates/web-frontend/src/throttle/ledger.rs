//! One kind of key's failed logins (usernames, or client addresses): each
//! key's failures in a sliding window, its attempts in flight, and a bounded
//! map of keys with least-recently-used eviction. The rules are in the parent
//! module's opening comment.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// How long a failure counts.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// When one kind of key is refused, and how many of them are kept.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Refused once this many failures (not forgiven by a success) are in the
    /// window.
    pub(crate) soft: usize,
    /// Refused once the failures in the window plus the attempts in flight
    /// reach this: no more failures than this within the window, ever.
    pub(crate) hard: usize,
    /// At most this many keys are tracked.
    pub(crate) max_keys: usize,
    /// Whether a successful login forgives the key's failures for `soft`.
    pub(crate) forgiven_by_success: bool,
}

/// The entries of one kind of key.
#[derive(Debug)]
pub(super) struct Ledger<K> {
    pub(super) entries: HashMap<K, Entry>,
    limits: Limits,
}

#[derive(Debug)]
pub(super) struct Entry {
    /// The times of the failures in the window (at most `hard` of them),
    /// oldest first.
    failures: VecDeque<Instant>,
    /// Failures at or before this were forgiven (for `soft`) by a success.
    forgiven_until: Option<Instant>,
    /// Attempts let through whose outcome is not known yet.
    in_flight: usize,
    /// The last time this key was used (eviction order).
    last_seen: Instant,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Self {
            failures: VecDeque::new(),
            forgiven_until: None,
            in_flight: 0,
            last_seen: now,
        }
    }

    /// Forgets the failures that have left the window.
    fn expire(&mut self, now: Instant) {
        while self
            .failures
            .front()
            .is_some_and(|&at| now.saturating_duration_since(at) >= WINDOW)
        {
            self.failures.pop_front();
        }
        if self.failures.is_empty() {
            self.forgiven_until = None;
        }
    }

    fn is_idle(&self) -> bool {
        self.failures.is_empty() && self.in_flight == 0
    }

    /// How long until this key lets an attempt through; `None`: now.
    /// Expects [`Entry::expire`] to have run.
    fn wait(&self, limits: Limits, now: Instant) -> Option<Duration> {
        let until_expired = |at: Instant| (at + WINDOW).saturating_duration_since(now);
        let live = self.failures.len();
        let forgiven = self
            .forgiven_until
            .map_or(0, |until| self.failures.partition_point(|&at| at <= until));
        let mut wait = None;
        // The counted failures are the newest `live - forgiven`; below `soft`
        // once the oldest of the newest `soft` leaves the window.
        if live - forgiven >= limits.soft {
            wait = Some(until_expired(self.failures[live - limits.soft]));
        }
        let load = live + self.in_flight;
        if load >= limits.hard {
            // Should every attempt in flight fail, the load falls below `hard`
            // once `load - hard + 1` of the failures have left the window.
            let hard_wait = self
                .failures
                .get(load - limits.hard)
                .map_or(WINDOW, |&at| until_expired(at));
            wait = wait.max(Some(hard_wait));
        }
        wait
    }
}

impl<K: Copy + Eq + Hash> Ledger<K> {
    pub(super) fn new(limits: Limits) -> Self {
        Self {
            entries: HashMap::new(),
            limits,
        }
    }

    pub(super) fn wait(&mut self, key: &K, now: Instant) -> Option<Duration> {
        let entry = self.entries.get_mut(key)?;
        entry.expire(now);
        entry.wait(self.limits, now)
    }

    pub(super) fn start(&mut self, key: K, now: Instant) {
        let entry = self.entry(key, now);
        entry.in_flight += 1;
        entry.last_seen = entry.last_seen.max(now);
    }

    pub(super) fn finish(&mut self, key: K, success: bool, now: Instant) {
        if success {
            // An entry evicted meanwhile has nothing left to update.
            let Some(entry) = self.entries.get_mut(&key) else {
                return;
            };
            entry.in_flight = entry.in_flight.saturating_sub(1);
            if self.limits.forgiven_by_success {
                entry.forgiven_until = entry.forgiven_until.max(Some(now));
            }
            entry.expire(now);
            if entry.is_idle() {
                self.entries.remove(&key);
            }
            return;
        }
        let hard = self.limits.hard;
        let entry = self.entry(key, now);
        entry.in_flight = entry.in_flight.saturating_sub(1);
        entry.expire(now);
        // Attempts finish in any order: keep the times sorted.
        let at = entry.failures.partition_point(|&at| at <= now);
        entry.failures.insert(at, now);
        while entry.failures.len() > hard {
            entry.failures.pop_front();
        }
        entry.last_seen = entry.last_seen.max(now);
    }

    /// The key's entry, made when missing (room made first when full).
    fn entry(&mut self, key: K, now: Instant) -> &mut Entry {
        if self.entries.len() >= self.limits.max_keys && !self.entries.contains_key(&key) {
            self.make_room(now);
        }
        self.entries.entry(key).or_insert_with(|| Entry::new(now))
    }

    /// Drops the expired entries, then, while more than nine tenths of the
    /// room is taken, the least recently used ones: at least a tenth of the
    /// room is free afterwards, so this full pass runs at most once every
    /// `max_keys / 10` new keys.
    fn make_room(&mut self, now: Instant) {
        self.prune(now);
        let keep = self.limits.max_keys - self.limits.max_keys.div_ceil(10);
        let excess = self.entries.len().saturating_sub(keep);
        if excess == 0 {
            return;
        }
        let mut last_seen: Vec<Instant> = self.entries.values().map(|e| e.last_seen).collect();
        let (_, &mut cutoff, _) = last_seen.select_nth_unstable(excess - 1);
        let mut left = excess;
        self.entries.retain(|_, entry| {
            if left > 0 && entry.last_seen <= cutoff {
                left -= 1;
                false
            } else {
                true
            }
        });
    }

    /// Drops every entry with no failure in the window and nothing in flight.
    pub(super) fn prune(&mut self, now: Instant) {
        self.entries.retain(|_, entry| {
            entry.expire(now);
            !entry.is_idle()
        });
        if self.entries.capacity() > 1024 && self.entries.capacity() / 4 > self.entries.len() {
            self.entries.shrink_to(self.entries.len() * 2);
        }
    }
}
