//! An account's role, as tokens, profiles and signups name it.

use serde::{Deserialize, Serialize};

/// An account's role; `admin` is also the dispatcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Orders food.
    Customer,
    /// Owns restaurants and steps their orders.
    Restaurant,
    /// Delivers orders.
    Driver,
    /// Operates the service and dispatches.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Customer, Role::Restaurant, Role::Driver, Role::Admin];

    /// The wire name (`customer`, `restaurant`, `driver`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Restaurant => "restaurant",
            Role::Driver => "driver",
            Role::Admin => "admin",
        }
    }

    /// The role named `s` on the wire, if any.
    pub fn parse(s: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_the_serde_names() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
    }
}
