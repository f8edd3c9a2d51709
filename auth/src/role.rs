//! The role vocabulary, defined by the wire contract and re-exported here
//! so `auth::Role` keeps working.

pub use contract::Role;
