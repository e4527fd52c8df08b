//! The pagination walker's judgement: given the ids a walk returned (pages
//! concatenated) and the ids the chat holds, is the walk complete, without
//! duplicates, in one consistent order (R12)? Pure, so it is unit-tested on
//! synthetic pages below and shared by every pagination case.

use std::collections::HashSet;

/// What is wrong with a walk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalkProblem {
    #[error("{0} came twice")]
    Duplicate(String),
    #[error("{missing} of {total} missing, e.g. {example}")]
    Missing {
        missing: usize,
        total: usize,
        example: String,
    },
    #[error("the order changes within the walk")]
    OrderChanged,
}

/// Checks a walk against the chat's ids in send order. Ids the walk holds
/// that are not in `expected` (messages that arrived during the walk) are
/// allowed; the order may be oldest first or newest first, but the same
/// throughout.
pub fn check(walk: &[String], expected: &[String]) -> Result<(), WalkProblem> {
    let mut seen = HashSet::new();
    if let Some(dup) = walk.iter().find(|id| !seen.insert(id.as_str())) {
        return Err(WalkProblem::Duplicate(dup.clone()));
    }
    let missing: Vec<&String> = expected
        .iter()
        .filter(|id| !seen.contains(id.as_str()))
        .collect();
    if let Some(first) = missing.first() {
        return Err(WalkProblem::Missing {
            missing: missing.len(),
            total: expected.len(),
            example: (*first).clone(),
        });
    }
    let known: HashSet<&str> = expected.iter().map(String::as_str).collect();
    let in_walk: Vec<&String> = walk
        .iter()
        .filter(|id| known.contains(id.as_str()))
        .collect();
    let forward = in_walk.iter().copied().eq(expected.iter());
    let backward = in_walk.iter().copied().eq(expected.iter().rev());
    if forward || backward {
        Ok(())
    } else {
        Err(WalkProblem::OrderChanged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("m{i:03}")).collect()
    }

    /// Cuts `ids` into pages of `limit` (a synthetic server).
    fn pages(ids: &[String], limit: usize) -> Vec<Vec<String>> {
        ids.chunks(limit).map(<[String]>::to_vec).collect()
    }

    #[test]
    fn complete_walks_pass_in_either_order_and_with_arrivals() {
        let all = ids(23);
        for limit in [1, 5, 23, 40] {
            let walk: Vec<String> = pages(&all, limit).concat();
            assert_eq!(check(&walk, &all), Ok(()));
            let newest_first: Vec<String> = all.iter().rev().cloned().collect();
            assert_eq!(check(&pages(&newest_first, limit).concat(), &all), Ok(()));
        }
        let mut with_arrival = all.clone();
        with_arrival.insert(10, "new".into());
        assert_eq!(check(&with_arrival, &all), Ok(()));
        assert_eq!(check(&[], &[]), Ok(()));
    }

    #[test]
    fn overlapping_pages_skipped_items_and_reordering_are_caught() {
        let all = ids(20);
        // Page 2 starts one item early (overlap).
        let mut overlap = all[..5].to_vec();
        overlap.extend(all[4..].iter().cloned());
        assert_eq!(
            check(&overlap, &all),
            Err(WalkProblem::Duplicate("m004".into()))
        );
        // Page 2 starts one item late (skip).
        let mut skip = all[..5].to_vec();
        skip.extend(all[6..].iter().cloned());
        assert_eq!(
            check(&skip, &all),
            Err(WalkProblem::Missing {
                missing: 1,
                total: 20,
                example: "m005".into()
            })
        );
        // Pages in the wrong order.
        let p = pages(&all, 5);
        let swapped = [p[1].clone(), p[0].clone(), p[2].clone(), p[3].clone()].concat();
        assert_eq!(check(&swapped, &all), Err(WalkProblem::OrderChanged));
    }
}
