//! Which build cache entries a retention pass removes (`[retention] builds`
//! and `build_cache_size`), as a pure decision.
//!
//! The adapter (`greenroom gc`, `serve`'s periodic pass) lists the cache
//! with sizes, last-use times and which entries what runs now needs; this
//! module picks what goes and says why. Protected entries are never picked,
//! even when the cache stays over its size; everything else unused for
//! longer than the age limit goes, then the least recently used until the
//! cache fits.

use crate::time::{self, Millis};
use std::time::Duration;

/// One entry of the build cache as the adapter found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// Caller's name for it (e.g. `ogr/1a2b3c-9f8e`).
    pub name: String,
    /// Bytes on disk.
    pub size: u64,
    /// Last time a cycle used it (built or reused), ms since the epoch.
    pub last_used: Millis,
    /// What runs now needs it (its checkout is a running component's artifact).
    pub protected: bool,
}

/// An entry to remove and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// Index into the entries given.
    pub index: usize,
    /// Why, for people.
    pub reason: String,
}

/// Picks the entries to remove: unprotected ones unused for longer than
/// `max_age`, then the least recently used unprotected ones until the total
/// size is at most `max_size`. Deterministic: ties go by name.
pub fn select_builds(entries: &[CacheEntry], now: Millis, max_age: Duration, max_size: u64) -> Vec<Removal> {
    let cutoff = now.saturating_sub(i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX));
    let mut out = Vec::new();
    let mut total: u64 = entries.iter().map(|e| e.size).fold(0, u64::saturating_add);
    let mut rest: Vec<usize> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if e.protected {
            continue;
        }
        if e.last_used < cutoff {
            out.push(Removal {
                index: i,
                reason: format!(
                    "unused since {} (longer than {})",
                    time::format(e.last_used),
                    time::format_span(i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX))
                ),
            });
            total = total.saturating_sub(e.size);
        } else {
            rest.push(i);
        }
    }
    rest.sort_by(|&a, &b| (entries[a].last_used, &entries[a].name).cmp(&(entries[b].last_used, &entries[b].name)));
    for i in rest {
        if total <= max_size {
            break;
        }
        out.push(Removal {
            index: i,
            reason: format!("least recently used while the cache is over {} bytes", max_size),
        });
        total = total.saturating_sub(entries[i].size);
    }
    out.sort_by_key(|r| r.index);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY: i64 = 86_400_000;

    fn e(name: &str, size: u64, last_used: Millis, protected: bool) -> CacheEntry {
        CacheEntry {
            name: name.into(),
            size,
            last_used,
            protected,
        }
    }

    #[test]
    fn old_entries_go_then_the_least_recently_used_until_it_fits() {
        let now = 100 * DAY;
        let entries = vec![
            e("old", 10, now - 20 * DAY, false),
            e("old-but-running", 10, now - 30 * DAY, true),
            e("recent-a", 40, now - DAY, false),
            e("recent-b", 40, now - 2 * DAY, false),
            e("fresh", 40, now, false),
        ];
        let r = select_builds(&entries, now, Duration::from_secs(14 * 86_400), 90);
        let picked: Vec<&str> = r.iter().map(|r| entries[r.index].name.as_str()).collect();
        // 140 bytes; without "old" 130; dropping recent-b (least recently used) leaves 90: fits.
        assert_eq!(picked, vec!["old", "recent-b"]);
        assert!(r[0].reason.starts_with("unused since"));
        assert!(r[1].reason.starts_with("least recently used"));
        // A smaller limit takes recent-a too, never the protected one.
        let r = select_builds(&entries, now, Duration::from_secs(14 * 86_400), 50);
        let picked: Vec<&str> = r.iter().map(|r| entries[r.index].name.as_str()).collect();
        assert_eq!(picked, vec!["old", "recent-a", "recent-b"]);
    }

    #[test]
    fn protected_entries_stay_even_over_the_limit() {
        let entries = vec![e("a", 100, 0, true), e("b", 100, 0, true)];
        assert!(select_builds(&entries, DAY * 365, Duration::from_secs(1), 1).is_empty());
    }

    proptest! {
        #[test]
        fn never_protected_and_fits_when_it_can(
            specs in proptest::collection::vec((0u64..1000, 0i64..(30 * DAY), any::<bool>()), 0..40),
            max_size in 0u64..20_000,
            age_days in 1u64..30,
        ) {
            let now = 30 * DAY;
            let entries: Vec<CacheEntry> = specs
                .iter()
                .enumerate()
                .map(|(i, (size, used, p))| e(&format!("e{i}"), *size, *used, *p))
                .collect();
            let r = select_builds(&entries, now, Duration::from_secs(age_days * 86_400), max_size);
            let removed: std::collections::BTreeSet<usize> = r.iter().map(|r| r.index).collect();
            prop_assert_eq!(removed.len(), r.len(), "no entry twice");
            for i in &removed {
                prop_assert!(!entries[*i].protected);
            }
            let kept: u64 = entries.iter().enumerate().filter(|(i, _)| !removed.contains(i)).map(|(_, e)| e.size).sum();
            let protected: u64 = entries.iter().filter(|e| e.protected).map(|e| e.size).sum();
            prop_assert!(kept <= max_size.max(protected), "kept {} > limit {} (protected {})", kept, max_size, protected);
            // Nothing unprotected and older than the limit survives.
            let cutoff = now - i64::try_from(age_days).unwrap_or(0) * DAY;
            for (i, en) in entries.iter().enumerate() {
                if !en.protected && en.last_used < cutoff {
                    prop_assert!(removed.contains(&i));
                }
            }
        }
    }
}
