//! The store itself: connecting by URL, the file-backed database, and
//! migrations applied once.

use auth::Role;
use commerce::store::{Inserted, User};
use engine::UserId;

fn user(email: &str) -> User {
    User {
        id: UserId::new(),
        email: email.to_owned(),
        password_hash: "$argon2id$fake".to_owned(),
        name: "N".to_owned(),
        phone: None,
        role: Role::Customer,
        banned_at_ms: None,
        created_at_ms: 1,
        language: None,
    }
}

#[tokio::test]
async fn file_database_survives_a_reopen() {
    let dir = std::env::temp_dir().join(format!(
        "hexdash-commerce-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    // The directory does not exist yet: connect creates it.
    let url = format!("sqlite://{}/nested/hexdash.db", dir.display());
    let store = commerce::connect(&url).await.unwrap();
    store.ping().await.unwrap();
    let ann = user("ann@example.com");
    assert_eq!(store.insert_user(&ann).await.unwrap(), Inserted::Created);
    // Email uniqueness ignores case even for rows written directly.
    assert_eq!(
        store.insert_user(&user("ANN@example.com")).await.unwrap(),
        Inserted::Duplicate
    );
    drop(store);

    // Reopening runs the migrator again, which finds nothing to do.
    let store = commerce::connect(&url).await.unwrap();
    assert_eq!(
        store.user_by_email("ann@example.com").await.unwrap(),
        Some(ann.clone())
    );
    assert_eq!(store.user(ann.id).await.unwrap(), Some(ann));
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn urls_it_does_not_serve() {
    for url in ["mysql://h/db", "nonsense", ""] {
        match commerce::connect(url).await {
            Err(commerce::StoreError::Unsupported(msg)) => assert!(!msg.is_empty()),
            Err(other) => panic!("{url}: {other}"),
            Ok(_) => panic!("{url}: connected"),
        }
    }
}
