//! One contract, checked on every [`Store`] that needs no server: the in-memory store and the
//! local data directory (the S3 store is checked against SeaweedFS in the integration tests).

use kompass_core::key::{DataType, ObjectKey, UserId};

use super::local::LocalStore;
use super::memory::MemoryStore;
use super::{Backend, PutMode, Scope, Store, StoreError};

fn key(owner: Option<&str>, t: &str, name: &str) -> ObjectKey {
    ObjectKey::parse_parts(owner, t, name).unwrap()
}

async fn contract(store: &impl Store) {
    let a = key(Some("alice"), "routes", "a.json");
    let b = key(Some("alice"), "fitness", "b.json");
    let c = key(Some("bob"), "routes", "c.json");
    let g = key(None, "models", "m.bin");
    assert!(store.head(&a).await.unwrap().is_none());
    assert!(store.get(&a).await.unwrap_err().is_not_found());

    let rec = store.put(&a, b"12345", PutMode::Overwrite).await.unwrap();
    assert_eq!((rec.key.clone(), rec.size), (a.clone(), 5));
    store.put(&b, b"xy", PutMode::Overwrite).await.unwrap();
    store.put(&c, b"z", PutMode::Overwrite).await.unwrap();
    store.put(&g, b"model", PutMode::Overwrite).await.unwrap();

    assert_eq!(store.get(&a).await.unwrap(), b"12345");
    assert_eq!(store.head(&a).await.unwrap().unwrap().size, 5);
    let e = store.put(&a, b"other", PutMode::CreateOnly).await.unwrap_err();
    assert!(matches!(e, StoreError::Exists { .. }), "{e}");
    assert_eq!(store.get(&a).await.unwrap(), b"12345", "create-only changed nothing");
    store.put(&a, b"123", PutMode::Overwrite).await.unwrap();
    assert_eq!(store.head(&a).await.unwrap().unwrap().size, 3);

    let alice = UserId::new("alice").unwrap();
    let keys = |l: super::Listing| l.objects.into_iter().map(|o| o.key).collect::<Vec<_>>();
    assert_eq!(
        keys(store.list(Scope::Owner(Some(&alice))).await.unwrap()),
        vec![b.clone(), a.clone()]
    );
    assert_eq!(
        keys(store.list(Scope::Type(Some(&alice), DataType::Routes)).await.unwrap()),
        vec![a.clone()]
    );
    assert_eq!(keys(store.list(Scope::Owner(None)).await.unwrap()), vec![g.clone()]);
    assert_eq!(keys(store.list(Scope::All).await.unwrap()).len(), 4);

    store.delete(&a).await.unwrap();
    store.delete(&a).await.unwrap(); // deleting a missing object succeeds
    assert!(store.head(&a).await.unwrap().is_none());
    assert_eq!(keys(store.list(Scope::All).await.unwrap()).len(), 3);
}

#[tokio::test]
async fn the_memory_store_keeps_the_contract() {
    let m = MemoryStore::new(Backend::S3);
    contract(&m).await;
    assert!(m.requests().put >= 5);
    m.set_down(true);
    assert!(m.head(&key(None, "models", "m.bin")).await.unwrap_err().is_outage());
}

#[tokio::test]
async fn the_local_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract(&LocalStore::new(dir.path())).await;
}
