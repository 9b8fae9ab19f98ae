//! Deploy plans: in which order components are deployed and stopped.
//!
//! Pure functions over the configuration; the engine executes the plan.

use crate::config::{Config, Environment};

/// The environment's components in deploy order: every component after the
/// components it depends on; otherwise in config order (stable, so the
/// same config always deploys in the same order). Config validation has
/// already rejected cycles; should one slip through, the remaining
/// components are appended in config order rather than dropped.
pub fn deploy_order(config: &Config, env: &Environment) -> Vec<String> {
    let members = &env.components;
    let mut done: Vec<String> = Vec::with_capacity(members.len());
    while done.len() < members.len() {
        let next = members.iter().find(|m| {
            !done.contains(m)
                && config
                    .component(m)
                    .map(|c| c.depends_on.iter().all(|d| done.contains(d) || !members.contains(d)))
                    .unwrap_or(true)
        });
        match next {
            Some(n) => done.push(n.clone()),
            None => {
                for m in members {
                    if !done.contains(m) {
                        done.push(m.clone());
                    }
                }
            }
        }
    }
    done
}

/// Stop order: the reverse of the deploy order (dependents first).
pub fn stop_order(config: &Config, env: &Environment) -> Vec<String> {
    let mut order = deploy_order(config, env);
    order.reverse();
    order
}

/// Rollback order (seed 003: "the git storage layer first"): the
/// environment's `rollback_order` first, in that order, then the other
/// components in stop order (dependents first).
pub fn rollback_order(config: &Config, env: &Environment) -> Vec<String> {
    let mut order: Vec<String> = env
        .rollback_order
        .iter()
        .filter(|c| env.components.contains(c))
        .cloned()
        .collect();
    for c in stop_order(config, env) {
        if !order.contains(&c) {
            order.push(c);
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use proptest::prelude::*;
    use std::path::Path;

    fn config_with(deps: &[(usize, usize)], n: usize) -> Config {
        let mut text = String::new();
        for i in 0..n {
            let d: Vec<String> = deps
                .iter()
                .filter(|(a, _)| *a == i)
                .map(|(_, b)| format!("\"c{b}\""))
                .collect();
            text.push_str(&format!(
                "[[component]]\nname = \"c{i}\"\nrepo = \"r\"\nrun = \"x\"\ndepends_on = [{}]\n",
                d.join(",")
            ));
        }
        text.push_str("[[environment]]\nname = \"e\"\n");
        match parse(&text, Path::new("t"), Path::new("/")) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn dependencies_first_otherwise_config_order() {
        let c = config_with(&[(0, 2), (1, 2)], 4);
        let env = c.environments[0].clone();
        assert_eq!(deploy_order(&c, &env), vec!["c2", "c0", "c1", "c3"]);
        assert_eq!(stop_order(&c, &env), vec!["c3", "c1", "c0", "c2"]);
        assert_eq!(rollback_order(&c, &env), stop_order(&c, &env));
        let mut env = env;
        env.rollback_order = vec!["c2".into(), "c3".into()];
        assert_eq!(rollback_order(&c, &env), vec!["c2", "c3", "c1", "c0"]);
    }

    proptest! {
        #[test]
        fn every_component_comes_after_its_dependencies(
            n in 1usize..8,
            raw in proptest::collection::vec((0usize..8, 0usize..8), 0..12),
        ) {
            // Only edges from higher to lower index: always a DAG.
            let deps: Vec<(usize, usize)> = raw.into_iter().filter(|(a, b)| a < &n && b < a).collect();
            let c = config_with(&deps, n);
            let env = c.environments[0].clone();
            let order = deploy_order(&c, &env);
            prop_assert_eq!(order.len(), n);
            for (a, b) in deps {
                let pa = order.iter().position(|x| *x == format!("c{a}"));
                let pb = order.iter().position(|x| *x == format!("c{b}"));
                prop_assert!(pb < pa);
            }
        }
    }
}
