//! MLS message processing in the client: arbitrary bytes as a group message and as a welcome.
//! openmls parses them; scanlab's client must turn every failure into a typed error.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod common;
use scanlab_messenger::mls::MlsClient;
use std::sync::OnceLock;

struct Setup {
    client: MlsClient,
    _dir: tempfile::TempDir,
}

// The client holds an openmls provider with a SQLite connection; one fuzzing thread uses it.
unsafe impl Sync for Setup {}
unsafe impl Send for Setup {}

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let dir = common::scratch();
        let client = MlsClient::open(dir.path(), "fz").unwrap();
        client.create_group("g").unwrap();
        Setup { client, _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let s = setup();
    let _ = s.client.process("g", data);
    let _ = s.client.join(data);
    let _ = scanlab_messenger::mls::open_attachment(
        data,
        &scanlab_messenger::mls::AttachmentRef {
            blob: String::new(),
            key: "00".repeat(32),
            nonce: "00".repeat(12),
            sha256: String::new(),
            len: data.len() / 2,
            media: Default::default(),
        },
    );
});
