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

mod ledger;

use std::hash::{BuildHasher as _, RandomState};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ledger::Ledger;
pub(crate) use ledger::{Limits, WINDOW};

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

#[cfg(test)]
mod tests;
