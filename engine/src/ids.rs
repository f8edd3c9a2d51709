//! Typed identifiers. Every id is a UUID on the wire and a distinct type in
//! code, so a driver id can never be passed where an order id is expected.
//!
//! The engine never makes ids (making a UUIDv7 reads the clock): new ids
//! are made at the edge from the application's injected clock
//! (`clock::Ids::next`, into any of these types through `From<Uuid>`), so
//! a test's manual clock stamps them. Only tests and benchmarks, with the
//! `test-ids` feature, get `new()` (and `Default`): a UUIDv7 from the
//! system clock, for ids whose time does not matter.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh UUIDv7 from the system clock: tests and benchmarks
            /// only (the `test-ids` feature). The application makes ids from
            /// its injected clock (`clock::Ids::next`).
            #[cfg(any(test, feature = "test-ids"))]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// The UUID inside.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        #[cfg(any(test, feature = "test-ids"))]
        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

id_type!(
    /// Any account: customer, restaurant owner, driver or admin.
    UserId
);
id_type!(
    /// A driver is a user with the driver role; its id is that user's id.
    DriverId
);
id_type!(OrderId);
id_type!(RestaurantId);
id_type!(
    /// One offer of one order to one driver.
    OfferId
);
id_type!(
    /// A dish (or drink) on a restaurant's menu.
    MenuItemId
);
id_type!(
    /// One charge or refund of one order.
    PaymentId
);
id_type!(
    /// A delivery address a customer saved.
    AddressId
);

impl From<UserId> for DriverId {
    fn from(u: UserId) -> Self {
        DriverId(u.0)
    }
}

impl From<DriverId> for UserId {
    fn from(d: DriverId) -> Self {
        UserId(d.0)
    }
}
