use serde::{Deserialize, Serialize};

/// What an account may do. `Admin` is also the dispatcher role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Restaurant,
    Driver,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Customer, Role::Restaurant, Role::Driver, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Restaurant => "restaurant",
            Role::Driver => "driver",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}
