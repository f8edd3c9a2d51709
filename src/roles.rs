//! A node's roles: which parts of hexdash this process runs
//! (`--roles api,ingest,gateway,matcher,relay`, `HEXDASH_ROLES`; all by
//! default), so an operator can scale the parts separately.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One part of hexdash a node may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The REST API (accounts, restaurants, orders, offers' answers) and
    /// the auto-reject sweep.
    Api,
    /// Driver pings in: the MQTT broker, the driver WebSocket stream and
    /// HTTP batches.
    Ingest,
    /// The tracking WebSocket (`/v1/ws`) for customers and dispatchers.
    Gateway,
    /// Dispatch: the matcher's loop (offer deadlines, retries, batches),
    /// arrival fences and the event stream's dispatch trigger.
    Matcher,
    /// The once-per-cluster consumers of the event stream (notifications,
    /// outside channels, reports, delivered routes, webhooks) and, with
    /// Redis, the publisher of the outbox onto the Redis stream.
    Relay,
}

impl Role {
    /// Every role, in the order they are listed.
    pub const ALL: [Role; 5] = [
        Role::Api,
        Role::Ingest,
        Role::Gateway,
        Role::Matcher,
        Role::Relay,
    ];

    /// The role's name in flags, variables and `/readyz`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Api => "api",
            Role::Ingest => "ingest",
            Role::Gateway => "gateway",
            Role::Matcher => "matcher",
            Role::Relay => "relay",
        }
    }
}

/// The roles of a node: a non-empty set, written `api,ingest,…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roles(BTreeSet<Role>);

impl Roles {
    /// Every role: what one node runs by default.
    pub fn all() -> Roles {
        Roles(Role::ALL.into_iter().collect())
    }

    /// Whether the node runs `role`.
    pub fn has(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    /// The roles, in [`Role::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = Role> + '_ {
        self.0.iter().copied()
    }

    /// Refuses the splits that cannot work: a matcher's offers live in
    /// its process's memory, so a driver's answer (REST) must reach the
    /// node that made the offer. In a cluster (`clustered`: Redis) any api
    /// node forwards the answer there, so the roles split freely; a single
    /// node without Redis has nowhere to forward to, so there the REST API
    /// and the matcher run together.
    pub fn validate(&self, clustered: bool) -> Result<(), String> {
        if !clustered && self.has(Role::Api) != self.has(Role::Matcher) {
            return Err(
                "roles api and matcher go together without redis_url: a driver's \
                 answer to an offer (REST) must reach the matcher that made it (in \
                 memory), and only a cluster forwards it to another node"
                    .into(),
            );
        }
        Ok(())
    }
}

impl Default for Roles {
    fn default() -> Self {
        Roles::all()
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Role::as_str).collect();
        f.write_str(&names.join(","))
    }
}

impl FromStr for Roles {
    type Err = String;

    fn from_str(s: &str) -> Result<Roles, String> {
        let mut roles = BTreeSet::new();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let role = Role::ALL
                .into_iter()
                .find(|r| r.as_str() == name)
                .ok_or_else(|| {
                    format!("unknown role {name:?} (roles: api, ingest, gateway, matcher, relay)")
                })?;
            roles.insert(role);
        }
        if roles.is_empty() {
            return Err("a node needs at least one role".into());
        }
        Ok(Roles(roles))
    }
}

impl Serialize for Roles {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Roles {
    /// `"api,ingest"` (a variable or a flag) or `["api", "ingest"]` (TOML).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Roles, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Text(String),
            List(Vec<String>),
        }
        let text = match Written::deserialize(d)? {
            Written::Text(text) => text,
            Written::List(names) => names.join(","),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_from_their_names() {
        let check = |text: &str, expected: Result<&str, &str>| {
            let parsed = text.parse::<Roles>().map(|r| r.to_string());
            match expected {
                Ok(shown) => assert_eq!(parsed.as_deref(), Ok(shown), "{text}"),
                Err(part) => {
                    let err = parsed.unwrap_err();
                    assert!(err.contains(part), "{text}: {err}");
                }
            }
        };
        check(
            "api,ingest,gateway,matcher,relay",
            Ok("api,ingest,gateway,matcher,relay"),
        );
        check("relay, api ,relay", Ok("api,relay"));
        check("ingest", Ok("ingest"));
        check("", Err("at least one role"));
        check("api,brain", Err("unknown role \"brain\""));
        assert_eq!(
            Roles::default().to_string(),
            "api,ingest,gateway,matcher,relay"
        );
    }

    #[test]
    fn api_and_matcher_go_together_only_without_a_cluster() {
        let check = |text: &str, alone: bool, clustered: bool| {
            let roles = text.parse::<Roles>().unwrap();
            assert_eq!(roles.validate(false).is_ok(), alone, "{text} alone");
            assert_eq!(roles.validate(true).is_ok(), clustered, "{text} clustered");
        };
        check("api,ingest,gateway,matcher,relay", true, true);
        check("api,matcher", true, true);
        check("ingest,gateway", true, true);
        check("relay", true, true);
        check("api", false, true);
        check("matcher,ingest", false, true);
    }

    #[test]
    fn roles_read_from_a_list_or_a_string() {
        let from_list: Roles = serde_json::from_str(r#"["gateway", "ingest"]"#).unwrap();
        let from_text: Roles = serde_json::from_str(r#""ingest,gateway""#).unwrap();
        assert_eq!(from_list, from_text);
        assert_eq!(
            serde_json::to_string(&from_list).unwrap(),
            r#""ingest,gateway""#
        );
        assert!(serde_json::from_str::<Roles>(r#""""#).is_err());
    }
}
