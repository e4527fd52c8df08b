//! Every conformance case, in one table (the order is the run order).

pub mod kit;
mod lifecycle;
mod pagination;
mod plugins;
mod realtime;
mod rest;
mod stream;
pub mod thenvoi;

use crate::case::Case;

/// All cases.
pub fn all() -> Vec<Case> {
    let mut v = rest::cases();
    v.extend(pagination::cases());
    v.extend(realtime::cases());
    v.extend(lifecycle::cases());
    v.extend(stream::cases());
    v.extend(plugins::cases());
    v.extend(thenvoi::cases());
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_and_shaped_group_sub_n() {
        let all = super::all();
        let mut ids = std::collections::HashSet::new();
        for c in &all {
            assert!(ids.insert(c.id), "duplicate id {}", c.id);
            let parts: Vec<&str> = c.id.split('.').collect();
            assert!(
                parts.len() >= 2 && parts.last().is_some_and(|n| n.parse::<u32>().is_ok()),
                "{} is not group.sub.N",
                c.id
            );
            assert!(
                c.requirement.len() > 20 && c.desc.len() > 10,
                "{} needs its requirement and description",
                c.id
            );
        }
    }
}
