//! The provider's request bodies: arbitrary bytes to every endpoint, with and without a valid
//! token, through the real router and recording layer (in process). Every answer is an HTTP
//! status; nothing panics, and a malformed body is never a 500.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod common;
use scanlab_messenger::client::{Client, LocalTransport, Transport};
use scanlab_messenger::{Limits, Provider, SqliteStore};
use std::sync::OnceLock;

struct Setup {
    transport: LocalTransport,
    token: String,
    _dir: tempfile::TempDir,
}

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let dir = common::scratch();
        let provider = Provider::new(
            Box::new(SqliteStore::open(&dir.path().join("p")).unwrap()),
            Limits::default(),
        );
        let c = Client::connect(
            &dir.path().join("alice"),
            "alice",
            LocalTransport::new(provider.clone()),
        )
        .unwrap();
        Client::connect(
            &dir.path().join("bob"),
            "bob",
            LocalTransport::new(provider.clone()),
        )
        .unwrap();
        Setup {
            token: c.token().to_string(),
            transport: LocalTransport::new(provider),
            _dir: dir,
        }
    })
}

const ROUTES: [(&str, &str); 14] = [
    ("POST", "/v1/register"),
    ("POST", "/v1/auth/challenge"),
    ("POST", "/v1/auth/token"),
    ("POST", "/v1/keypackages"),
    ("GET", "/v1/keypackages/bob"),
    ("POST", "/v1/messages"),
    ("GET", "/v1/queue"),
    ("POST", "/v1/queue/ack"),
    ("PUT", "/v1/blobs"),
    ("GET", "/v1/blobs/00"),
    ("GET", "/v1/scheme"),
    ("POST", "/v1/scan"),
    ("POST", "/v1/review"),
    ("POST", "/v1/report"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let s = setup();
    let (method, path) = ROUTES[sel as usize % ROUTES.len()];
    let token = (sel & 0x80 == 0).then_some(s.token.as_str());
    if let Err(e) = s
        .transport
        .call(method, path, token, body.to_vec(), sel & 0x40 == 0)
    {
        let e = e.to_string();
        assert!(!e.starts_with("provider: 500"), "{method} {path}: {e}");
    }
});
