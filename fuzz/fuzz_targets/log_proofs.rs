//! The auditable list's proof verifier on arbitrary proof bundles (JSON): it answers
//! listed, not listed, or why the proof fails; it never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scanlab_hashlist::log::Policy;
use scanlab_hashlist::store::{ProofBundle, verify_bundle};

fuzz_target!(|data: &[u8]| {
    let Ok(bundle) = serde_json::from_slice::<ProofBundle>(data) else {
        return;
    };
    let key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let _ = verify_bundle(key, Policy { k: 0, orgs: vec![] }, &bundle);
    let _ = verify_bundle(key, Policy { k: 1, orgs: vec![] }, &bundle);
});
