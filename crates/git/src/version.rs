//! Version ordering of tag names.
//!
//! Owns [`compare_versions`], a pure function used to pick the newest tag
//! matching a pattern. It must never touch git, the filesystem or the network,
//! and must stay a total order (antisymmetric, transitive) for any input.

use std::cmp::Ordering;

/// Compare two tag names as versions.
///
/// The names are split into runs of digits and runs of other characters
/// (a Debian-style comparison):
///
/// * digit runs compare numerically (`v1.10` > `v1.9`, leading zeros ignored);
/// * other runs compare character by character, where a pre-release marker
///   sorts *before the end of the name*: `~` first, then `-`, then ASCII
///   letters. So `v2.0.0-rc1` < `v2.0.0`, `1.0~beta` < `1.0`, `1.0a1` < `1.0`,
///   while `1.0.1`, `1.0.post1` and `1.0+build` sort after `1.0`;
/// * names that compare equal by these rules but differ (`1.01` vs `1.1`) are
///   ordered by their bytes, so the result is `Equal` only for equal strings.
///
/// ```
/// use std::cmp::Ordering;
/// use greenroom_git::compare_versions;
/// assert_eq!(compare_versions("v1.10.0", "v1.9.0"), Ordering::Greater);
/// assert_eq!(compare_versions("v2.0.0-rc1", "v2.0.0"), Ordering::Less);
/// assert_eq!(compare_versions("v2.0.0-rc2", "v2.0.0-rc10"), Ordering::Less);
/// ```
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    version_order(a.as_bytes(), b.as_bytes()).then_with(|| a.cmp(b))
}

/// Weight of one byte inside a non-digit run; `None` (end of the run: a digit
/// or the end of the name) weighs 0.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(b'~') => -1000,
        Some(b'-') => -900,
        Some(c) if c.is_ascii_alphabetic() => -800 + i32::from(c),
        Some(c) => 256 + i32::from(c),
    }
}

fn version_order(mut a: &[u8], mut b: &[u8]) -> Ordering {
    while !a.is_empty() || !b.is_empty() {
        // Non-digit runs, compared by weight; a shorter run continues with the
        // weight of what follows it (a digit or the end: 0).
        let na = a.iter().take_while(|c| !c.is_ascii_digit()).count();
        let nb = b.iter().take_while(|c| !c.is_ascii_digit()).count();
        for i in 0..na.max(nb) {
            let wa = weight(if i < na { a.get(i).copied() } else { None });
            let wb = weight(if i < nb { b.get(i).copied() } else { None });
            match wa.cmp(&wb) {
                Ordering::Equal => {}
                other => return other,
            }
        }
        a = &a[na..];
        b = &b[nb..];

        // Digit runs, compared numerically (an absent run counts as 0).
        let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
        let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let (ra, rb) = (strip_zeros(&a[..da]), strip_zeros(&b[..db]));
        match ra.len().cmp(&rb.len()).then_with(|| ra.cmp(rb)) {
            Ordering::Equal => {}
            other => return other,
        }
        a = &a[da..];
        b = &b[db..];
    }
    Ordering::Equal
}

fn strip_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&c| c == b'0').count();
    &digits[zeros..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lt(a: &str, b: &str) {
        assert_eq!(compare_versions(a, b), Ordering::Less, "{a} < {b}");
        assert_eq!(compare_versions(b, a), Ordering::Greater, "{b} > {a}");
    }

    #[test]
    fn concrete_orderings() {
        lt("v1.9.0", "v1.10.0");
        lt("v1.2.0", "v1.9.0");
        lt("v1.10.0", "v2.0.0-rc1");
        lt("v2.0.0-rc1", "v2.0.0");
        lt("v2.0.0-rc1", "v2.0.0-rc2");
        lt("v2.0.0-rc2", "v2.0.0-rc10");
        lt("v2.0.0-alpha", "v2.0.0-beta");
        lt("v2.0.0-beta.2", "v2.0.0-rc.1");
        lt("1.0~rc1", "1.0");
        lt("1.0a1", "1.0");
        lt("1.0", "1.0.1");
        lt("1.0", "1.0+build5");
        lt("release-2.9", "release-2.10");
        lt("1.01", "1.1"); // numerically equal: ordered by bytes
        assert_eq!(compare_versions("v1.2.3", "v1.2.3"), Ordering::Equal);
        assert_eq!(compare_versions("", ""), Ordering::Equal);
        lt("", "1");
    }

    #[test]
    fn newest_by_max() {
        let tags = ["v1.2.0", "v1.10.0", "v1.9.0", "v2.0.0-rc1"];
        let max = tags.iter().copied().max_by(|a, b| compare_versions(a, b));
        assert_eq!(max, Some("v2.0.0-rc1"));
        let max = tags[..3].iter().copied().max_by(|a, b| compare_versions(a, b));
        assert_eq!(max, Some("v1.10.0"));
    }

    fn version_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            "v?[0-9]{1,3}(\\.[0-9]{1,3}){0,3}(-(rc|alpha|beta)\\.?[0-9]{0,2})?",
            "[0-9a-c.~+-]{0,10}",
        ]
    }

    proptest! {
        #[test]
        fn reflexive_and_antisymmetric(a in version_strategy(), b in version_strategy()) {
            prop_assert_eq!(compare_versions(&a, &a), Ordering::Equal);
            prop_assert_eq!(compare_versions(&a, &b), compare_versions(&b, &a).reverse());
            prop_assert_eq!(compare_versions(&a, &b) == Ordering::Equal, a == b);
        }

        #[test]
        fn transitive(a in version_strategy(), b in version_strategy(), c in version_strategy()) {
            let v = [a, b, c];
            for (x, y, z) in [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)] {
                let (x, y, z) = (&v[x], &v[y], &v[z]);
                for ord in [Ordering::Less, Ordering::Greater] {
                    if compare_versions(x, y) == ord && compare_versions(y, z) == ord {
                        prop_assert_eq!(compare_versions(x, z), ord, "{} {} {}", x, y, z);
                    }
                }
            }
        }

        #[test]
        fn sorting_is_consistent(mut v in proptest::collection::vec(version_strategy(), 2..24)) {
            v.sort_by(|x, y| compare_versions(x, y));
            for i in 0..v.len() {
                for j in i + 1..v.len() {
                    prop_assert_ne!(compare_versions(&v[i], &v[j]), Ordering::Greater, "{} {}", v[i], v[j]);
                }
            }
        }

        #[test]
        fn numeric_components_order_like_numbers(x in 0u32..100_000, y in 0u32..100_000, p in 0u32..50) {
            let a = format!("v{p}.{x}.0");
            let b = format!("v{p}.{y}.0");
            prop_assert_eq!(compare_versions(&a, &b), x.cmp(&y));
            // A pre-release sorts before its release and after the previous release.
            let rc = format!("v{p}.{x}.1-rc1");
            prop_assert_eq!(compare_versions(&rc, &format!("v{p}.{x}.1")), Ordering::Less);
            prop_assert_eq!(compare_versions(&rc, &format!("v{p}.{x}.0")), Ordering::Greater);
        }
    }
}
