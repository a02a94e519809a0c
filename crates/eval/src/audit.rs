//! Can users detect a poisoned list? The auditable list log (RFC 6962 Merkle log with signed
//! heads, gossip and a k-of-n voucher policy) from the hash-list crate, attacked two ways:
//!
//! - **targeted** (a split view): the operator serves one user a list with the poster added,
//!   and everyone else the honest list;
//! - **global**: the operator adds the poster to the one list everyone gets — with vouchers
//!   from two organisations in different jurisdictions (colluding or coerced), or without.
//!
//! Each case is run through the real log and auditor code, and the result says whether a
//! client's checks caught it.

use scanlab_hashlist::log::{Auditor, ListLog, LogLeaf, Organisation, Policy};
use scanlab_pdq::Hash256;

/// Whether each attack was detected by clients' checks.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AuditResults {
    /// Split view served to one user: caught by gossip between users.
    pub targeted_split_view_detected: bool,
    /// The poster added for everyone with k = 2 valid vouchers: nothing to catch.
    pub global_with_vouchers_detected: bool,
    /// The poster added for everyone with no vouchers: caught by the policy check.
    pub global_without_vouchers_detected: bool,
    /// Entries in the honest list.
    pub list_entries: usize,
}

fn leaf(id: u64, hash: Hash256, orgs: &[&Organisation]) -> LogLeaf {
    LogLeaf {
        id,
        hash,
        label: "stand-in".into(),
        added: 0,
        vouchers: orgs.iter().map(|o| o.vouch(&hash)).collect(),
    }
}

/// Runs the three attacks on a log of `list` with `poster` as the target.
pub fn run(list: &[Hash256], poster: Hash256) -> AuditResults {
    let orgs = [
        Organisation::new("org-a", "A", [1; 32]),
        Organisation::new("org-b", "B", [2; 32]),
        Organisation::new("org-c", "C", [3; 32]),
    ];
    let policy = Policy {
        k: 2,
        orgs: orgs.iter().map(|o| o.public.clone()).collect(),
    };
    let build = |extra: Option<LogLeaf>| {
        let mut log = ListLog::new([7; 32], policy.clone());
        for (i, h) in list.iter().enumerate() {
            log.append(leaf(i as u64, *h, &[&orgs[0], &orgs[1]]))
                .expect("honest entries carry two vouchers");
        }
        if let Some(l) = extra {
            log.dangerous_append_unchecked(l);
        }
        log
    };
    let honest = build(None);
    let n = list.len() as u64;

    // Targeted: Alice gets the honest list plus one honest entry, Bob the list plus the
    // poster; same size, different roots.
    let decoy = Hash256::from_bytes([0x5A; 32]);
    let alice_log = build(Some(leaf(n, decoy, &[&orgs[0], &orgs[1]])));
    let bob_log = build(Some(leaf(n, poster, &[&orgs[0], &orgs[1]])));
    let mut alice = Auditor::new(honest.operator_key(), policy.clone());
    alice.observe(&honest.publish(1), &[]).ok();
    let a = alice_log.publish(2);
    alice
        .observe(&a, &alice_log.prove_consistency(n).unwrap_or_default())
        .ok();
    let targeted = alice.gossip(&bob_log.publish(2), &[]).is_err();

    // Global, with vouchers: everyone gets the same extended list; every check passes.
    let global = build(Some(leaf(n, poster, &[&orgs[1], &orgs[2]])));
    let with = detect_global(&honest, &global, &policy, n);
    // Global, without vouchers.
    let bare = build(Some(leaf(n, poster, &[])));
    let without = detect_global(&honest, &bare, &policy, n);
    AuditResults {
        targeted_split_view_detected: targeted,
        global_with_vouchers_detected: with,
        global_without_vouchers_detected: without,
        list_entries: list.len(),
    }
}

/// A client that saw the honest head moves to the new one and checks every new leaf.
fn detect_global(honest: &ListLog, new: &ListLog, policy: &Policy, n: u64) -> bool {
    let mut c = Auditor::new(honest.operator_key(), policy.clone());
    if c.observe(&honest.publish(1), &[]).is_err() {
        return true;
    }
    let head = new.publish(2);
    let consistency = new.prove_consistency(n).unwrap_or_default();
    if c.observe(&head, &consistency).is_err() {
        return true;
    }
    let leaf = &new.leaves()[n as usize];
    let proof = new.prove_inclusion(n).unwrap_or_default();
    c.check_leaf(&head, leaf, n, &proof).is_err()
}
