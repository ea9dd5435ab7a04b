//! Failed logins, throttled per username and per client address (the
//! contract's "Hardening" section): never before the 11th failure for one
//! username (the 31st from one address) within 60 s, and at the latest from
//! the 21st (the 51st).
//!
//! # The rules
//!
//! Each key (a username, a client address) keeps the times of its failed
//! logins of the last [`WINDOW`] — a sliding window, exact to the instant, so
//! no burst across a window edge doubles what gets through. A login attempt is
//! refused (429 with `Retry-After`, before any password is looked at, so with
//! the right password too) when, for its username or its address:
//!
//! - the failures in the window reach the *soft* limit: [`USERNAME_LIMITS`]
//!   refuses once 11 failures are in the window, [`ADDRESS_LIMITS`] once 31
//!   are: the 12th (32nd) attempt is the first refused. Both readings of the
//!   contract's lower bound hold: the 11th failure itself is let through and
//!   checked, so throttling never starts before the 11th failure has happened;
//! - the failures in the window plus the attempts being checked right now
//!   reach the *hard* limit, 20 (50): at most 20 (50) failures can ever happen
//!   within 60 s, however many attempts are sent at the same instant (a plain
//!   check-then-count would let a burst of concurrent attempts all pass the
//!   check before the first failure is counted). This can refuse an attempt
//!   before the 11th failure only while 10 or more attempts for that username
//!   (20 or more from that address) are being checked at that very moment,
//!   which no person at a keyboard does.
//!
//! A refused attempt runs no argon2 and is not counted as a failure; an
//! attempt let through is counted as in flight until its outcome is known (an
//! attempt abandoned midway, its client gone, counts as a failure).
//!
//! # Success
//!
//! A successful login forgives its username's earlier failures for the soft
//! limit (someone who mistyped five times and then got in starts afresh), but
//! never for the hard limit, so the contract's upper bound holds even when the
//! real user logs in between an attacker's guesses. It forgives nothing for its
//! address: otherwise an attacker holding one valid account could reset their
//! own address's counter between guesses at other accounts.
//!
//! # Keys
//!
//! - Usernames are compared exactly as [`crate::users::UserDirectory`]
//!   compares them: byte for byte, no case folding or trimming (`Gonzalo` can
//!   never log in as `gonzalo`, so its failures are another username's; they
//!   still count for the address). A key is a 128-bit keyed hash of the
//!   username (SipHash, keys random per process): small whatever the
//!   username's length, not chosen by a client to collide, and no failed
//!   username — often a password typed in the wrong field — is kept in memory.
//! - The client address is the TCP peer's ([`actix_web::HttpRequest::peer_addr`]),
//!   never `X-Forwarded-For`, which any client can forge. Behind a reverse
//!   proxy every client shares the proxy's address, so the per-address bound
//!   then applies to all clients of that proxy together. An IPv4-mapped IPv6
//!   address is its IPv4 address; any other IPv6 address counts as its /64
//!   (what one subscriber or one LAN is given, the way an IPv4 NAT shares one
//!   address): otherwise one client could rotate through 2^64 addresses.
//!   Without a peer address (not TCP) only the username is throttled.
//!
//! # Memory
//!
//! At most [`Limits::max_keys`] keys of each kind (100,000) are tracked; each
//! keeps at most its hard limit of times. Entries whose failures have all left
//! the window are dropped (on every use, and all of them at least once a window
//! while logins go on); when a map is full, the expired ones go first, then the
//! least recently used tenth, so a flood of random usernames costs a bounded
//! amount of memory (evicting a key forgets its failures: the address bound
//! still limits such a flood from one address).
//!
//! # Scope
//!
//! The counters live in this process. With several web-frontend nodes (the
//! scaled mode) each node counts for itself, so the bounds hold per node.
//!
//! One [`std::sync::Mutex`] guards both maps; it is held for a few map
//! operations, never across an `.await`. Time is passed in (`now`), so the
//! tests move it without sleeping.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher as _, Hash, RandomState};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard, PoisonError};
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

/// Per username: the 11th failure is still checked, the 12th attempt is
/// refused; never more than 20 failures within the window.
pub(crate) const USERNAME_LIMITS: Limits = Limits {
    soft: 11,
    hard: 20,
    max_keys: 100_000,
    forgiven_by_success: true,
};

/// Per client address: the 31st failure is still checked, the 32nd attempt is
/// refused; never more than 50 failures within the window. A success never
/// forgives an address.
pub(crate) const ADDRESS_LIMITS: Limits = Limits {
    soft: 31,
    hard: 50,
    max_keys: 100_000,
    forgiven_by_success: false,
};

/// The failed-login throttle shared by every worker.
pub(crate) struct LoginThrottle {
    state: Mutex<State>,
    /// The two keys of the usernames' 128-bit hash.
    username_hashers: (RandomState, RandomState),
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys are nobody's business, even in a debug dump.
        f.debug_struct("LoginThrottle").finish_non_exhaustive()
    }
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(USERNAME_LIMITS, ADDRESS_LIMITS)
    }
}

/// A login attempt refused by the throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Throttled {
    retry_after: Duration,
    by_username: bool,
    by_address: bool,
}

impl Throttled {
    /// Whole seconds until an attempt would be let through (if nothing else
    /// fails meanwhile), for `Retry-After`: at least 1, at most 60.
    pub(crate) fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        secs.clamp(1, WINDOW.as_secs())
    }

    /// Which limit refused it, for the log.
    pub(crate) fn limited_by(&self) -> &'static str {
        match (self.by_username, self.by_address) {
            (true, true) => "username and address",
            (true, false) => "username",
            (false, _) => "address",
        }
    }
}

/// A login attempt let through: it counts as in flight until
/// [`Attempt::succeeded`] or [`Attempt::failed`]; dropped without either, it
/// counts as a failure.
#[derive(Debug)]
#[must_use = "an attempt counts as a failure unless it is marked succeeded"]
pub(crate) struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    username: UsernameKey,
    address: Option<AddressKey>,
    finished: bool,
}

impl Attempt<'_> {
    pub(crate) fn succeeded(mut self, now: Instant) {
        self.finish(true, now);
    }

    pub(crate) fn failed(mut self, now: Instant) {
        self.finish(false, now);
    }

    fn finish(&mut self, success: bool, now: Instant) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let mut state = self.throttle.lock();
        state.usernames.finish(self.username, success, now);
        if let Some(address) = self.address {
            state.addresses.finish(address, success, now);
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.finish(false, Instant::now());
    }
}

impl LoginThrottle {
    pub(crate) fn new(usernames: Limits, addresses: Limits) -> Self {
        Self {
            state: Mutex::new(State {
                usernames: Ledger::new(usernames),
                addresses: Ledger::new(addresses),
                last_prune: Instant::now(),
            }),
            username_hashers: (RandomState::new(), RandomState::new()),
        }
    }

    /// Lets a login attempt by `username` from `address` through, or refuses
    /// it. Call it before looking at the password; mark the attempt's outcome.
    pub(crate) fn begin(
        &self,
        username: &str,
        address: Option<IpAddr>,
        now: Instant,
    ) -> Result<Attempt<'_>, Throttled> {
        let username = self.username_key(username);
        let address = address.map(AddressKey::of);
        let mut state = self.lock();
        state.prune_if_due(now);
        let by_username = state.usernames.wait(&username, now);
        let by_address = address.and_then(|address| state.addresses.wait(&address, now));
        if by_username.is_some() || by_address.is_some() {
            return Err(Throttled {
                retry_after: by_username.max(by_address).unwrap_or(WINDOW),
                by_username: by_username.is_some(),
                by_address: by_address.is_some(),
            });
        }
        state.usernames.start(username, now);
        if let Some(address) = address {
            state.addresses.start(address, now);
        }
        drop(state);
        Ok(Attempt {
            throttle: self,
            username,
            address,
            finished: false,
        })
    }

    fn username_key(&self, username: &str) -> UsernameKey {
        let (high, low) = &self.username_hashers;
        UsernameKey(u128::from(high.hash_one(username)) << 64 | u128::from(low.hash_one(username)))
    }

    /// A panic elsewhere cannot leave the maps inconsistent in a way that
    /// matters (every update is a few field writes), so a poisoned lock is
    /// used as it is rather than failing every login from then on.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many usernames and addresses are tracked.
    #[cfg(test)]
    fn tracked(&self) -> (usize, usize) {
        let state = self.lock();
        (state.usernames.entries.len(), state.addresses.entries.len())
    }
}

/// A username's 128-bit keyed hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct UsernameKey(u128);

/// A client address as counted: IPv4, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct AddressKey(IpAddr);

impl AddressKey {
    fn of(address: IpAddr) -> Self {
        Self(match address {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
            },
        })
    }
}

#[derive(Debug)]
struct State {
    usernames: Ledger<UsernameKey>,
    addresses: Ledger<AddressKey>,
    last_prune: Instant,
}

impl State {
    /// Drops every expired entry once per window.
    fn prune_if_due(&mut self, now: Instant) {
        if now.saturating_duration_since(self.last_prune) >= WINDOW {
            self.usernames.prune(now);
            self.addresses.prune(now);
            self.last_prune = now;
        }
    }
}

/// The entries of one kind of key.
#[derive(Debug)]
struct Ledger<K> {
    entries: HashMap<K, Entry>,
    limits: Limits,
}

#[derive(Debug)]
struct Entry {
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
    fn new(limits: Limits) -> Self {
        Self {
            entries: HashMap::new(),
            limits,
        }
    }

    fn wait(&mut self, key: &K, now: Instant) -> Option<Duration> {
        let entry = self.entries.get_mut(key)?;
        entry.expire(now);
        entry.wait(self.limits, now)
    }

    fn start(&mut self, key: K, now: Instant) {
        let entry = self.entry(key, now);
        entry.in_flight += 1;
        entry.last_seen = entry.last_seen.max(now);
    }

    fn finish(&mut self, key: K, success: bool, now: Instant) {
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
    fn prune(&mut self, now: Instant) {
        self.entries.retain(|_, entry| {
            entry.expire(now);
            !entry.is_idle()
        });
        if self.entries.capacity() > 1024 && self.entries.capacity() / 4 > self.entries.len() {
            self.entries.shrink_to(self.entries.len() * 2);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const HOME: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    const ELSEWHERE: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)));

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn fail(throttle: &LoginThrottle, username: &str, address: Option<IpAddr>, now: Instant) {
        throttle
            .begin(username, address, now)
            .expect("let through")
            .failed(now);
    }

    fn succeed(throttle: &LoginThrottle, username: &str, address: Option<IpAddr>, now: Instant) {
        throttle
            .begin(username, address, now)
            .expect("let through")
            .succeeded(now);
    }

    /// Fails sequentially (100 ms apart) until refused; the number of the
    /// first refused attempt.
    fn first_refused(
        throttle: &LoginThrottle,
        username: impl Fn(usize) -> String,
        address: Option<IpAddr>,
        start: Instant,
    ) -> usize {
        for n in 1..=100 {
            let now = start + ms(100 * n as u64);
            match throttle.begin(&username(n), address, now) {
                Ok(attempt) => attempt.failed(now),
                Err(_) => return n,
            }
        }
        panic!("never refused");
    }

    #[test]
    fn a_username_is_refused_after_its_11th_failure_within_the_contract_bounds() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        let first = first_refused(&throttle, |_| "gonzalo".into(), HOME, start);
        // The contract: never before the 11th failure, at the latest from the 21st.
        assert!((11..=21).contains(&first), "{first}");
        assert_eq!(first, 12, "the documented threshold");
        // Refused whatever the password, from any address.
        let now = start + ms(1300);
        assert!(throttle.begin("gonzalo", ELSEWHERE, now).is_err());
        assert!(throttle.begin("gonzalo", None, now).is_err());
        // Other usernames, from the same address, are let through.
        assert!(throttle.begin("alice", HOME, now).is_ok());
    }

    #[test]
    fn the_10th_failure_is_never_throttled_and_the_21st_always_is_even_after_a_success() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        for n in 0..10 {
            fail(&throttle, "gonzalo", HOME, start + ms(n));
        }
        // The real user logs in: the soft count starts afresh...
        succeed(&throttle, "gonzalo", HOME, start + ms(10));
        for n in 11..21 {
            fail(&throttle, "gonzalo", ELSEWHERE, start + ms(n));
        }
        // ...but 20 failures within the window are the most there can be.
        assert!(throttle.begin("gonzalo", None, start + ms(21)).is_err());
        assert!(throttle.begin("gonzalo", None, start + ms(59_999)).is_err());
        assert!(throttle.begin("gonzalo", None, start + ms(60_000)).is_ok());
    }

    #[test]
    fn concurrent_attempts_cannot_pass_the_hard_bound() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        let attempts: Vec<_> = (0..20)
            .map(|_| throttle.begin("gonzalo", None, now).expect("let through"))
            .collect();
        let refused = throttle
            .begin("gonzalo", None, now)
            .expect_err("21st refused");
        assert_eq!(refused.retry_after_secs(), 60, "should all 20 fail");
        // Those that succeed free their place.
        let mut attempts = attempts.into_iter();
        attempts.next().expect("one").succeeded(now);
        let again = throttle.begin("gonzalo", None, now).expect("let through");
        for attempt in attempts {
            attempt.failed(now);
        }
        again.failed(now);
        assert!(throttle.begin("gonzalo", None, now + ms(59_999)).is_err());
        assert!(throttle.begin("gonzalo", None, now + WINDOW).is_ok());
    }

    #[test]
    fn an_address_is_refused_after_its_31st_failure_within_the_contract_bounds() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        // One guess per username: only the address bound can apply.
        let first = first_refused(&throttle, |n| format!("user{n}"), HOME, start);
        assert!((31..=51).contains(&first), "{first}");
        assert_eq!(first, 32, "the documented threshold");
        let now = start + ms(3300);
        let refused = throttle.begin("anyone", HOME, now).expect_err("refused");
        assert_eq!(refused.limited_by(), "address");
        // Another address is let through.
        assert!(throttle.begin("anyone", ELSEWHERE, now).is_ok());
    }

    #[test]
    fn the_30th_failure_from_an_address_is_never_throttled_and_the_51st_always_is() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for n in 0..30 {
            fail(&throttle, &format!("user{n}"), HOME, now);
        }
        assert!(
            throttle.begin("user30", HOME, now).is_ok(),
            "31st let through"
        );
        let throttle = LoginThrottle::default();
        let attempts: Vec<_> = (0..50)
            .map(|n| {
                throttle
                    .begin(&format!("user{n}"), HOME, now)
                    .expect("let through")
            })
            .collect();
        assert!(throttle.begin("user50", HOME, now).is_err(), "51st refused");
        drop(attempts);
    }

    #[test]
    fn a_success_does_not_reset_the_address() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for n in 0..30 {
            fail(&throttle, &format!("user{n}"), HOME, now);
        }
        succeed(&throttle, "alice", HOME, now);
        fail(&throttle, "user30", HOME, now);
        assert!(throttle.begin("alice", HOME, now).is_err());
    }

    #[test]
    fn a_success_forgives_the_username_below_the_hard_bound() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..8 {
            fail(&throttle, "alice", HOME, now);
        }
        succeed(&throttle, "alice", HOME, now);
        for _ in 0..8 {
            fail(&throttle, "alice", HOME, now);
        }
        assert!(throttle.begin("alice", HOME, now).is_ok());
    }

    #[test]
    fn the_window_slides_and_retry_after_says_when() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        // Failures 1 s apart: at 0 s, 1 s, ..., 10 s.
        for n in 0..11 {
            fail(&throttle, "gonzalo", HOME, start + Duration::from_secs(n));
        }
        let now = start + ms(10_500);
        let refused = throttle.begin("gonzalo", HOME, now).expect_err("refused");
        // The failure at 0 s leaves the window at 60 s: 49.5 s from now.
        assert_eq!(refused.retry_after, ms(49_500));
        assert_eq!(refused.retry_after_secs(), 50);
        assert_eq!(refused.limited_by(), "username");
        // Refused attempts are not failures: the window is unchanged.
        for n in 0..100 {
            assert!(throttle.begin("gonzalo", HOME, now + ms(n)).is_err());
        }
        assert!(throttle.begin("gonzalo", HOME, start + ms(59_999)).is_err());
        let attempt = throttle
            .begin("gonzalo", HOME, start + WINDOW)
            .expect("one through");
        // Let through again, it is in flight; a failure refuses the next one
        // until the failure at 1 s leaves the window.
        attempt.failed(start + WINDOW);
        let refused = throttle
            .begin("gonzalo", HOME, start + WINDOW)
            .expect_err("refused");
        assert_eq!(refused.retry_after_secs(), 1);
        // Everything has left the window long after.
        assert!(
            throttle
                .begin("gonzalo", HOME, start + Duration::from_secs(200))
                .is_ok()
        );
    }

    #[test]
    fn retry_after_is_positive_and_at_most_the_window() {
        for spacing in [0, 1, 999, 1000, 5_999] {
            for after in [0, 1, 500, 1000] {
                let throttle = LoginThrottle::default();
                let start = Instant::now();
                for n in 0..11 {
                    fail(&throttle, "gonzalo", HOME, start + ms(n * spacing));
                }
                let elapsed = 10 * spacing + after;
                let now = start + ms(elapsed);
                if elapsed >= 60_000 {
                    // The first failure has left the window: ten remain.
                    assert!(throttle.begin("gonzalo", HOME, now).is_ok());
                    continue;
                }
                let refused = throttle.begin("gonzalo", HOME, now).expect_err("refused");
                let secs = refused.retry_after_secs();
                assert!((1..=60).contains(&secs), "{spacing} {after}: {secs}");
                // Refused until just before, let through once it has passed.
                let just_before = now + refused.retry_after - Duration::from_nanos(1);
                assert!(throttle.begin("gonzalo", HOME, just_before).is_err());
                let later = now + Duration::from_secs(secs);
                assert!(throttle.begin("gonzalo", HOME, later).is_ok());
            }
        }
        let tiny = Throttled {
            retry_after: Duration::from_nanos(1),
            by_username: true,
            by_address: false,
        };
        assert_eq!(tiny.retry_after_secs(), 1);
    }

    #[test]
    fn an_abandoned_attempt_counts_as_a_failure() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..11 {
            drop(throttle.begin("gonzalo", HOME, now).expect("let through"));
        }
        assert!(throttle.begin("gonzalo", HOME, now).is_err());
    }

    #[test]
    fn usernames_are_compared_exactly_and_kept_small() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        let long = "x".repeat(100_000);
        for _ in 0..11 {
            fail(&throttle, "gonzalo", None, now);
            fail(&throttle, &long, None, now);
        }
        assert!(throttle.begin("gonzalo", None, now).is_err());
        assert!(throttle.begin(&long, None, now).is_err());
        assert!(throttle.begin("Gonzalo", None, now).is_ok());
        assert!(throttle.begin(" gonzalo", None, now).is_ok());
        assert!(throttle.begin(&"x".repeat(99_999), None, now).is_ok());
    }

    #[test]
    fn an_ipv6_client_counts_as_its_64_and_a_mapped_ipv4_as_itself() {
        let v6 = |s: &str| AddressKey::of(s.parse().expect("address"));
        assert_eq!(v6("2001:db8:1:2:aaaa::1"), v6("2001:db8:1:2:ffff::9"));
        assert_ne!(v6("2001:db8:1:2::1"), v6("2001:db8:1:3::1"));
        assert_eq!(v6("::ffff:192.0.2.1"), v6("192.0.2.1"));

        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for n in 0..31 {
            let address = format!("2001:db8:1:2::{n:x}").parse().ok();
            fail(&throttle, &format!("user{n}"), address, now);
        }
        let same_64 = "2001:db8:1:2:abcd::1".parse().ok();
        assert!(throttle.begin("anyone", same_64, now).is_err());
        let next_64 = "2001:db8:1:3::1".parse().ok();
        assert!(throttle.begin("anyone", next_64, now).is_ok());
    }

    #[test]
    fn a_flood_of_usernames_and_addresses_keeps_memory_bounded() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        // Attempts a microsecond apart: all 200,000 within one window, each
        // from another username and another address.
        for n in 0..200_000_u32 {
            let now = start + Duration::from_micros(u64::from(n));
            let address = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
            fail(&throttle, &format!("user{n}"), Some(address), now);
            let (usernames, addresses) = throttle.tracked();
            assert!(usernames <= USERNAME_LIMITS.max_keys, "{usernames}");
            assert!(addresses <= ADDRESS_LIMITS.max_keys, "{addresses}");
        }
        // The room is used: the most recent keys are kept.
        let (usernames, addresses) = throttle.tracked();
        assert!(
            usernames >= USERNAME_LIMITS.max_keys * 9 / 10,
            "{usernames}"
        );
        assert!(addresses >= ADDRESS_LIMITS.max_keys * 9 / 10, "{addresses}");
        // Once the window has passed, everything expired is dropped.
        let later = start + Duration::from_secs(61);
        throttle
            .begin("someone", None, later)
            .expect("let through")
            .succeeded(later);
        assert_eq!(throttle.tracked(), (0, 0));
    }

    #[test]
    fn eviction_drops_the_least_recently_used_keys_first() {
        let small = Limits {
            max_keys: 100,
            ..USERNAME_LIMITS
        };
        let throttle = LoginThrottle::new(small, ADDRESS_LIMITS);
        let start = Instant::now();
        for n in 0..50 {
            fail(&throttle, &format!("old{n}"), None, start + ms(n));
        }
        for n in 0..11 {
            fail(&throttle, "gonzalo", None, start + ms(100 + n));
        }
        for n in 0..60 {
            fail(&throttle, &format!("new{n}"), None, start + ms(200 + n));
            assert!(throttle.tracked().0 <= 100);
        }
        let tracked = |username: &str| {
            let key = throttle.username_key(username);
            throttle.lock().usernames.entries.contains_key(&key)
        };
        assert!(!tracked("old0") && !tracked("old19"), "the oldest went");
        assert!(tracked("old20") && tracked("new59"));
        // The recently active username kept its failures.
        assert!(throttle.begin("gonzalo", None, start + ms(300)).is_err());
    }
}
