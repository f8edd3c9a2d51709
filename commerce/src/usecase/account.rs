//! Accounts: signing up, the bootstrap admin, the caller's profile and
//! saved delivery addresses.
//!
//! Values come in parsed (the email normalised, the name trimmed, the
//! password already hashed, phone and address checked); this module
//! applies the rules that need the store (an email has one account, an
//! existing account is never promoted to admin, at most
//! [`MAX_ADDRESSES`] saved addresses) and the ids and times.

use auth::{Principal, Role};
use clock::Ids;
use engine::{AddressId, DriverId, LatLng, UserId};

use crate::notify::Language;
use crate::store::{AccountStore, Address, Inserted, StoreError, User};
use crate::{Error, Result};

/// The roles one may sign up for (admins are made by the bootstrap only).
pub const SIGNUP_ROLES: [Role; 3] = [Role::Customer, Role::Restaurant, Role::Driver];
/// Most saved addresses per account.
pub const MAX_ADDRESSES: usize = 20;
/// Counter: accounts created, by `role`.
pub const SIGNUPS_TOTAL: &str = "hexdash_signups_total";

/// An account to create, its values parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signup {
    /// Normalised (lower-case).
    pub email: String,
    /// The password's argon2id PHC string.
    pub password_hash: String,
    /// Trimmed.
    pub name: String,
    /// One of [`SIGNUP_ROLES`].
    pub role: Role,
}

/// Creates the account, with a new id from `ids`. Refused with
/// `email_taken` (a conflict) if an account has the email, and as
/// forbidden for a role one may not sign up for.
pub async fn sign_up(
    store: &(impl AccountStore + ?Sized),
    ids: &Ids,
    signup: Signup,
    now_ms: i64,
) -> Result<User> {
    if !SIGNUP_ROLES.contains(&signup.role) {
        return Err(Error::forbidden(format!(
            "one may not sign up as {}",
            signup.role.as_str()
        )));
    }
    let user = User {
        id: ids.next(),
        email: signup.email,
        password_hash: signup.password_hash,
        name: signup.name,
        phone: None,
        role: signup.role,
        banned_at_ms: None,
        created_at_ms: now_ms,
        language: None,
    };
    match store.insert_user(&user).await? {
        Inserted::Created => {
            metrics::counter!(SIGNUPS_TOTAL, "role" => user.role.as_str()).increment(1);
            Ok(user)
        }
        Inserted::Duplicate => Err(Error::conflict(
            "email_taken",
            "an account with this email already exists",
        )),
    }
}

/// What the bootstrap admin's start-up check found or did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminBootstrap {
    /// The admin account was created.
    Created(UserId),
    /// An admin with this email exists; left as it is (its password is not
    /// changed).
    AlreadyExists(UserId),
}

/// The admin account with `email` (normalised), if there is one. An
/// account with that email and another role is refused (`email_taken`):
/// whoever signed up with the admin email first must not become admin.
pub async fn existing_admin(
    store: &(impl AccountStore + ?Sized),
    email: &str,
) -> Result<Option<AdminBootstrap>> {
    match store.user_by_email(email).await? {
        Some(user) => admin_or_refusal(user).map(Some),
        None => Ok(None),
    }
}

/// Creates the admin account with `email` (normalised) and
/// `password_hash`, after [`existing_admin`] found none; if another node
/// created it meanwhile, that account (checked as [`existing_admin`]
/// does).
pub async fn create_admin(
    store: &(impl AccountStore + ?Sized),
    ids: &Ids,
    email: &str,
    password_hash: String,
    now_ms: i64,
) -> Result<AdminBootstrap> {
    let user = User {
        id: ids.next(),
        email: email.to_owned(),
        password_hash,
        name: "Administrator".to_owned(),
        phone: None,
        role: Role::Admin,
        banned_at_ms: None,
        created_at_ms: now_ms,
        language: None,
    };
    match store.insert_user(&user).await? {
        Inserted::Created => Ok(AdminBootstrap::Created(user.id)),
        Inserted::Duplicate => match store.user_by_email(email).await? {
            Some(user) => admin_or_refusal(user),
            None => Err(Error::Store(StoreError::Corrupt(
                "admin email reported taken but not found".to_owned(),
            ))),
        },
    }
}

fn admin_or_refusal(user: User) -> Result<AdminBootstrap> {
    match user.role {
        Role::Admin => Ok(AdminBootstrap::AlreadyExists(user.id)),
        other => Err(Error::conflict(
            "email_taken",
            format!(
                "the admin email belongs to an existing {} account; refusing to promote it",
                other.as_str()
            ),
        )),
    }
}

/// The user's account.
pub async fn profile(store: &(impl AccountStore + ?Sized), user_id: UserId) -> Result<User> {
    store.user(user_id).await?.ok_or(Error::NotFound("user"))
}

/// Changes to a profile, parsed; `None` keeps a field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfilePatch {
    /// A new name (trimmed).
    pub name: Option<String>,
    /// A new phone number (checked); `Some(None)` removes it.
    pub phone: Option<Option<String>>,
    /// A new notification language; `Some(None)` goes back to the default.
    pub language: Option<Option<Language>>,
}

/// Applies `patch` to the user's profile; the account as stored now.
pub async fn update_profile(
    store: &(impl AccountStore + ?Sized),
    user_id: UserId,
    patch: ProfilePatch,
) -> Result<User> {
    let user = profile(store, user_id).await?;
    let name = patch.name.unwrap_or(user.name);
    let phone = patch.phone.unwrap_or(user.phone);
    let language = patch.language.unwrap_or(user.language);
    store
        .update_profile(user_id, &name, phone.as_deref(), language)
        .await?
        .ok_or(Error::NotFound("user"))
}

/// The user's saved addresses, oldest first.
pub async fn addresses(
    store: &(impl AccountStore + ?Sized),
    user_id: UserId,
) -> Result<Vec<Address>> {
    Ok(store.addresses(user_id).await?)
}

/// An address to save, its values parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct NewAddress {
    /// "Home", "Work" (trimmed).
    pub label: String,
    /// The street address (trimmed).
    pub address: String,
    /// The delivery point.
    pub location: LatLng,
}

/// Saves an address for the user, with a new id from `ids`. Refused with
/// `too_many_addresses` (a conflict) at [`MAX_ADDRESSES`].
pub async fn add_address(
    store: &(impl AccountStore + ?Sized),
    ids: &Ids,
    user_id: UserId,
    new: NewAddress,
    now_ms: i64,
) -> Result<Address> {
    // Checked before the insert: two concurrent adds may end one over the
    // cap, which bounds growth all the same.
    if store.addresses(user_id).await?.len() >= MAX_ADDRESSES {
        return Err(Error::conflict(
            "too_many_addresses",
            format!("at most {MAX_ADDRESSES} saved addresses; delete one first"),
        ));
    }
    let address = Address {
        id: ids.next(),
        user_id,
        label: new.label,
        address: new.address,
        location: new.location,
        created_at_ms: now_ms,
    };
    store.insert_address(&address).await?;
    Ok(address)
}

/// Deletes one of the user's saved addresses (not found if it is not
/// theirs).
pub async fn delete_address(
    store: &(impl AccountStore + ?Sized),
    user_id: UserId,
    address_id: AddressId,
) -> Result<()> {
    if store.delete_address(user_id, address_id).await? {
        Ok(())
    } else {
        Err(Error::NotFound("address"))
    }
}

/// Whether `principal` may act for the driver `driver_id` (its
/// availability, its live state): the driver itself may; an admin may for
/// any driver account (not found if `driver_id` is not one); anyone else
/// is forbidden.
pub async fn may_act_for_driver(
    store: &(impl AccountStore + ?Sized),
    principal: &Principal,
    driver_id: DriverId,
) -> Result<()> {
    match principal.role {
        Role::Driver if principal.user_id == driver_id.into() => Ok(()),
        Role::Admin => match store.user(driver_id.into()).await? {
            Some(user) if user.role == Role::Driver => Ok(()),
            _ => Err(Error::NotFound("driver")),
        },
        _ => Err(Error::forbidden(
            "only the driver itself or an admin may do this",
        )),
    }
}
