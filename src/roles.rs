//! Group-to-role mapping (docs/contract.md §7): a pure rule, applied by
//! the roster to every person's groups.

use std::collections::{BTreeMap, BTreeSet};

/// `ROLE_MAP` and `ROLE_DEFAULTS`, parsed. Groups match case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleMap {
    by_group: BTreeMap<String, BTreeSet<String>>,
    defaults: BTreeSet<String>,
}

fn entries(s: &str) -> impl Iterator<Item = &str> {
    // Accept real newlines and the literal `\n` an env file often carries.
    s.split([',', '\n'])
        .flat_map(|e| e.split("\\n"))
        .map(str::trim)
        .filter(|e| !e.is_empty())
}

impl RoleMap {
    /// `ROLE_MAP`'s entries and `ROLE_DEFAULTS`; the error names the bad
    /// entry of the map.
    pub fn parse(map: &str, defaults: &str) -> Result<Self, String> {
        let mut by_group: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for entry in entries(map) {
            let (group, role) = entry
                .split_once('=')
                .map(|(g, r)| (g.trim(), r.trim()))
                .filter(|(g, r)| !g.is_empty() && !r.is_empty() && !r.contains('='))
                .ok_or_else(|| format!("entry {entry:?} is not group=role"))?;
            by_group
                .entry(group.to_lowercase())
                .or_default()
                .insert(role.to_owned());
        }
        let defaults = entries(defaults).map(str::to_owned).collect();
        Ok(Self { by_group, defaults })
    }

    /// Defaults ∪ mapped groups, deduplicated and sorted.
    pub(crate) fn roles_for(&self, groups: &[String]) -> Vec<String> {
        let mut roles = self.defaults.clone();
        for g in groups {
            if let Some(mapped) = self.by_group.get(&g.to_lowercase()) {
                roles.extend(mapped.iter().cloned());
            }
        }
        roles.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_groups_case_insensitively_with_defaults() {
        let m =
            RoleMap::parse("admins=admin\\nops=publisher\nOps=auditor, x = y", "reader").unwrap();
        let groups = ["OPS".to_string(), "admins".into(), "unknown".into()];
        assert_eq!(
            m.roles_for(&groups),
            ["admin", "auditor", "publisher", "reader"]
        );
        assert_eq!(m.roles_for(&[]), ["reader"]);
    }

    #[test]
    fn malformed_entry_is_named() {
        for bad in ["admins", "=admin", "admins=", "a=b=c"] {
            let e = RoleMap::parse(bad, "").unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }
}
