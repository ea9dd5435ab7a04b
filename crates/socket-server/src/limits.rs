//! How many sockets one user may hold at once on this node
//! (`socket.max_connections_per_user`): a stolen token, or a runaway page,
//! cannot open sockets without end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Open sockets per username.
#[derive(Debug)]
pub(crate) struct ConnectionLimits {
    max: u32,
    open: Arc<Mutex<HashMap<Arc<str>, u32>>>,
}

/// One socket's place in its user's count; given back when dropped (kept in
/// the socket's extensions: dropped with the socket, whatever ends it).
#[derive(Debug)]
pub(crate) struct Slot {
    username: Arc<str>,
    open: Arc<Mutex<HashMap<Arc<str>, u32>>>,
}

impl ConnectionLimits {
    pub(crate) fn new(max: u32) -> Self {
        Self {
            max,
            open: Arc::default(),
        }
    }

    /// A place for one more socket of `username`, unless it holds `max` already.
    pub(crate) fn acquire(&self, username: &Arc<str>) -> Option<Slot> {
        let mut open = lock(&self.open);
        let count = open.entry(username.clone()).or_default();
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Slot {
            username: username.clone(),
            open: self.open.clone(),
        })
    }

    #[cfg(test)]
    fn count(&self, username: &str) -> u32 {
        lock(&self.open).get(username).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        if let Some(count) = open.get_mut(&self.username) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                // No entry for users without sockets: the map stays as small
                // as the set of connected users.
                open.remove(&self.username);
            }
        }
    }
}

fn lock(open: &Mutex<HashMap<Arc<str>, u32>>) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, u32>> {
    open.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_max_slots_and_one_back_for_each_dropped() {
        let limits = ConnectionLimits::new(2);
        let alice: Arc<str> = Arc::from("alice");
        let first = limits.acquire(&alice).expect("1st");
        let second = limits.acquire(&alice).expect("2nd");
        assert!(limits.acquire(&alice).is_none(), "3rd refused");
        assert!(
            limits.acquire(&Arc::from("bob")).is_some(),
            "others unaffected"
        );
        drop(first);
        let third = limits.acquire(&alice).expect("a slot came back");
        drop((second, third));
        assert_eq!(limits.count("alice"), 0);
        assert!(lock(&limits.open).is_empty(), "no entry left behind");
    }
}
