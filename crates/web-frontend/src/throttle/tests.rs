//! The throttle's rules, with the clock moved by hand.

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
