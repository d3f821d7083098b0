//! Rate limits on login, registration and password reset, per client address and per
//! account, with
//! governor's GCRA limiters.

use crate::error::ApiError;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, NotUntil, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// The login/register limiters.
#[derive(Debug)]
pub struct AuthLimiter {
    by_ip: DefaultKeyedRateLimiter<IpAddr>,
    by_account: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl AuthLimiter {
    /// `per_ip` and `per_account` attempts a minute, each allowed as a burst.
    pub fn new(per_ip: u32, per_account: u32) -> Self {
        Self::per_period(per_ip, per_account, Duration::from_secs(60))
    }

    /// `per_ip` and `per_account` attempts per `period`, each allowed as a burst.
    pub fn per_period(per_ip: u32, per_account: u32, period: Duration) -> Self {
        let quota = |n: u32| {
            let n = NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
            Quota::with_period(period / n.get())
                .unwrap_or_else(|| Quota::per_second(n))
                .allow_burst(n)
        };
        Self {
            by_ip: RateLimiter::keyed(quota(per_ip)),
            by_account: RateLimiter::keyed(quota(per_account)),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one attempt from `ip` on `account` (a normalized login name or email).
    pub fn check(&self, ip: IpAddr, account: &str) -> Result<(), ApiError> {
        let refused = self
            .by_ip
            .check_key(&ip)
            .and_then(|()| self.by_account.check_key(&account.to_owned()));
        refused.map_err(|n| self.refusal(&n))
    }

    /// Counts one attempt from `ip`, on no particular account.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.by_ip.check_key(&ip).map_err(|n| self.refusal(&n))
    }

    /// Counts one attempt on `account`, from no particular address.
    pub fn check_account(&self, account: &str) -> Result<(), ApiError> {
        self.by_account
            .check_key(&account.to_owned())
            .map_err(|n| self.refusal(&n))
    }

    fn refusal(&self, not_until: &NotUntil<<DefaultClock as Clock>::Instant>) -> ApiError {
        let wait = not_until.wait_time_from(self.clock.now());
        ApiError::RateLimited {
            retry_after: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        }
    }

    /// Forgets keys whose limits have fully recovered; run periodically.
    pub fn purge(&self) {
        self.by_ip.retain_recent();
        self.by_account.retain_recent();
        self.by_ip.shrink_to_fit();
        self.by_account.shrink_to_fit();
    }
}
