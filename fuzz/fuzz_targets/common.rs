//! What the targets share: a scratch folder for their stores.

/// A scratch folder, on tmpfs where there is one: the stateful targets commit SQLite writes.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap()
}
