//! Every registered scheme's provider half on arbitrary request bodies: each scheme deployed
//! as the evaluation deploys it (enclave included), its hooks reached through the provider's
//! real router. Answers are statuses; nothing panics or hangs, and bad input is never a 500.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod common;
use scanlab_messenger::client::{Client, LocalTransport, Transport};
use scanlab_messenger::{Limits, Provider, SqliteStore};
use std::sync::OnceLock;

struct Deployed {
    transport: LocalTransport,
    token: String,
}

struct Setup {
    schemes: Vec<Deployed>,
    _dir: tempfile::TempDir,
}

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let dir = common::scratch();
        let list = scanlab_hashlist::HashList::read(
            b"f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22\n",
        )
        .unwrap()
        .0;
        let list_file = dir.path().join("list.csv");
        std::fs::write(&list_file, list.to_csv()).unwrap();
        let mut schemes = Vec::new();
        for (i, s) in scanlab_schemes::registry().all().iter().enumerate() {
            let d = dir.path().join(format!("s{i}"));
            let sim = s
                .simulate(&scanlab_schemes::SimInputs {
                    list: &list,
                    list_file: &list_file,
                    dir: &d,
                    params: &Default::default(),
                    seed: 1,
                })
                .unwrap();
            let p = Provider::with_scheme(
                Box::new(SqliteStore::open(&d.join("provider")).unwrap()),
                Limits::default(),
                sim.provider,
            );
            let c = Client::connect(&d.join("u"), "u", LocalTransport::new(p.clone())).unwrap();
            schemes.push(Deployed {
                token: c.token().to_string(),
                transport: LocalTransport::new(p),
            });
        }
        Setup { schemes, _dir: dir }
    })
}

const HOOKS: [&str; 4] = [
    "/v1/scan",
    "/v1/messages",
    "/v1/scheme/message",
    "/v1/report",
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let s = setup();
    let d = &s.schemes[(sel as usize) % s.schemes.len()];
    let path = HOOKS[(sel as usize / 8) % HOOKS.len()];
    if let Err(e) = d
        .transport
        .call("POST", path, Some(&d.token), body.to_vec(), true)
    {
        let e = e.to_string();
        assert!(!e.starts_with("provider: 500"), "{path}: {e}");
    }
});
