//! Who may act on whose sessions and recordings (the config's `operators`), as it stands now:
//! replaced at every reload. The rule itself ([`allows`]) is pure.

use podgate_auth::Identity;
use podgate_config::OperatorsConfig;
use std::sync::RwLock;

/// What someone wants to do with a session (or a recording) that may not be theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    /// See it listed in `GET /podgate/sessions`.
    See,
    /// Watch it, read-only.
    Observe,
    /// End it.
    Terminate,
    /// List and replay recordings.
    Replay,
}

/// Whether `who` may do `right` to a session of `owner` (the user who opened it).
///
/// Everyone may see, watch and end their own sessions; operators' rights extend to everyone's
/// (observing or terminating implies seeing). Recordings are for `operators.replay` only, the
/// person recorded included: a recording may hold what others typed into a shared shell.
pub fn allows(c: &OperatorsConfig, right: Right, who: &Identity, owner: &str) -> bool {
    let admit = |p: &podgate_config::Principals| {
        p.admit(who.user().as_str(), who.groups().iter().map(|g| g.as_str()))
    };
    let own = who.user() == owner;
    match right {
        Right::See => own || admit(&c.sessions) || admit(&c.observe) || admit(&c.terminate),
        Right::Observe => own || admit(&c.observe),
        Right::Terminate => own || admit(&c.terminate),
        Right::Replay => admit(&c.replay),
    }
}

/// The rights as the config file says now.
#[derive(Default)]
pub struct Operators {
    config: RwLock<OperatorsConfig>,
}

impl Operators {
    pub fn new(config: OperatorsConfig) -> Operators {
        Operators {
            config: RwLock::new(config),
        }
    }

    /// Replaces the rights (a reload).
    pub fn set(&self, config: OperatorsConfig) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
    }

    pub fn allows(&self, right: Right, who: &Identity, owner: &str) -> bool {
        allows(
            &self.config.read().unwrap_or_else(|p| p.into_inner()),
            right,
            who,
            owner,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use podgate_config::Principals;

    fn who(user: &str, groups: &[&str]) -> Identity {
        Identity::new(user, groups.iter().copied()).expect("an identity")
    }

    #[test]
    fn own_sessions_operators_and_recordings() {
        let c = OperatorsConfig {
            sessions: Principals {
                users: vec!["auditor".into()],
                groups: vec![],
            },
            observe: Principals {
                users: vec![],
                groups: vec!["sre".into()],
            },
            terminate: Principals {
                users: vec!["lead".into()],
                groups: vec![],
            },
            replay: Principals {
                users: vec![],
                groups: vec!["audit".into()],
            },
        };
        let alice = who("alice", &["dev"]);
        let sre = who("sam", &["sre"]);
        let auditor = who("auditor", &[]);
        let lead = who("lead", &["dev"]);
        let replayer = who("rita", &["audit"]);
        // (who, right, owner, allowed)
        let table = [
            (&alice, Right::See, "alice", true),
            (&alice, Right::Observe, "alice", true),
            (&alice, Right::Terminate, "alice", true),
            (&alice, Right::See, "bob", false),
            (&alice, Right::Observe, "bob", false),
            (&alice, Right::Terminate, "bob", false),
            (&alice, Right::Replay, "alice", false),
            (&auditor, Right::See, "bob", true),
            (&auditor, Right::Observe, "bob", false),
            (&sre, Right::See, "bob", true),
            (&sre, Right::Observe, "bob", true),
            (&sre, Right::Terminate, "bob", false),
            (&lead, Right::See, "bob", true),
            (&lead, Right::Terminate, "bob", true),
            (&lead, Right::Observe, "bob", false),
            (&replayer, Right::Replay, "bob", true),
            (&replayer, Right::See, "bob", false),
        ];
        for (w, right, owner, allowed) in table {
            assert_eq!(
                allows(&c, right, w, owner),
                allowed,
                "{} {right:?} {owner}",
                w.user()
            );
        }
        // Nobody by default, beyond their own.
        let none = OperatorsConfig::default();
        assert!(!allows(&none, Right::See, &sre, "bob"));
        assert!(!allows(&none, Right::Replay, &sre, "sam"));
        // A group named like a user is not that user.
        let c = OperatorsConfig {
            terminate: Principals {
                users: vec![],
                groups: vec!["bob".into()],
            },
            ..Default::default()
        };
        assert!(!allows(&c, Right::Terminate, &who("bob", &[]), "carol"));
    }
}
