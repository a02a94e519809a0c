//! MLS message processing in the client: arbitrary bytes as a group message and as a welcome.
//! openmls parses them; scanlab's client must turn every failure into a typed error. The same
//! bytes also go to the leaf-credential verifier and, behind a valid header, to the attachment
//! opener (so its decryption and padding checks run, not only its commitment check).
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
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let client = MlsClient::open(dir.path(), "fz", &key).unwrap();
        client.create_group("g", Some("fuzz")).unwrap();
        Setup { client, _dir: dir }
    })
}

fn any(_: &scanlab_messenger::identity::Identity) -> Result<(), scanlab_messenger::mls::MlsError> {
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let s = setup();
    let _ = s.client.process("g", data, &any);
    let _ = s.client.join(data, &any);
    let _ = scanlab_messenger::mls::framing(data);
    let _ = scanlab_messenger::identity::verify_credential(data, b"leaf key");
    let key = [0u8; 32];
    let (_, commit) = scanlab_messenger::mls::attachment_keys(&key);
    let r = scanlab_messenger::mls::AttachmentRef {
        blob: String::new(),
        key: hex::encode(key),
        nonce: "00".repeat(12),
        sha256: String::new(),
        len: data.len() / 2,
        sender: "fz".into(),
        chat: "g".into(),
        media: Default::default(),
    };
    let _ = scanlab_messenger::mls::open_attachment(data, &r);
    let blob = [&scanlab_messenger::mls::BLOB_MAGIC[..], &commit, data].concat();
    let _ = scanlab_messenger::mls::open_attachment(&blob, &r);
});
