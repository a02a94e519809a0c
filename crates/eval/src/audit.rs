//! Can users detect a poisoned list? The auditable list log (RFC 6962 Merkle log with signed
//! heads, gossip, monitors and a k-of-n voucher policy) from the hash-list crate, attacked
//! three ways:
//!
//! - **targeted** (a split view): the operator serves one user a list with the poster added,
//!   and everyone else the honest list;
//! - **global**: the operator adds the poster to the one list everyone gets — with vouchers
//!   from two organisations in different jurisdictions (colluding or coerced), or without;
//! - **hidden entry**: the operator serves one user a head of a size nobody else sees whose
//!   sorted tree omits the poster, so that user's absence proof for it verifies.
//!
//! Each case is run through the real log and auditor code. An attack counts as detected only
//! when the check fails with the error that names it (a split view, a policy violation, a
//! sorted root that does not match), never on any error; and a control run in which the
//! operator is honest must raise none of them.

use scanlab_hashlist::log::{Auditor, ListLog, LogError, LogLeaf, Organisation, Policy};
use scanlab_pdq::Hash256;

/// Whether each attack was detected by clients' checks.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct AuditResults {
    /// Split view served to one user: caught by gossip between users (a `SplitView` error).
    pub targeted_split_view_detected: bool,
    /// The poster added for everyone with k = 2 valid vouchers: nothing to catch.
    pub global_with_vouchers_detected: bool,
    /// The poster added for everyone with no vouchers: caught by the policy check.
    pub global_without_vouchers_detected: bool,
    /// A head of a fresh size hiding the poster from its sorted tree: the user's absence proof
    /// verifies; caught by a monitor holding the list (a `SortedRootMismatch` error).
    pub hidden_entry_absence_verified_for_user: bool,
    /// The same head, caught by the monitor.
    pub hidden_entry_detected_by_monitor: bool,
    /// The honest control: gossip, leaf checks and the monitor raise nothing.
    pub control_passes: bool,
    /// Entries in the honest list.
    pub list_entries: usize,
}

const OPERATOR: [u8; 32] = [7; 32];
/// Timestamps of the heads: a day apart, checked by clients at `NOW`.
const T0: u64 = 1_790_000_000;
const NOW: u64 = T0 + 3 * 86_400;
/// The vouchers' expiry: after every entry.
const EXPIRES: u64 = T0 + 365 * 86_400;

/// Runs the attacks and the control on a log of `list` with `poster` as the target.
pub fn run(list: &[Hash256], poster: Hash256) -> AuditResults {
    let orgs = [
        Organisation::new("org-a", "A", [1; 32]),
        Organisation::new("org-b", "B", [2; 32]),
        Organisation::new("org-c", "C", [3; 32]),
    ];
    let policy = Policy::new(2, orgs.iter().map(|o| o.public.clone()).collect())
        .expect("three distinct keys");
    let id = ListLog::new(OPERATOR, policy.clone()).log_id();
    let leaf = |i: u64, hash: Hash256, by: &[&Organisation]| LogLeaf {
        id: i,
        hash,
        label: "stand-in".into(),
        added: T0,
        vouchers: by
            .iter()
            .map(|o| o.vouch(&id, &hash, "stand-in", EXPIRES))
            .collect(),
    };
    let build = |extra: Option<LogLeaf>| {
        let mut log = ListLog::new(OPERATOR, policy.clone());
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
    let decoy = Hash256::from_bytes([0x5A; 32]);
    let alice_log = build(Some(leaf(n, decoy, &[&orgs[0], &orgs[1]])));

    // Targeted: Alice gets the honest list plus one honest entry, Bob the list plus the
    // poster; same size, different roots.
    let bob_log = build(Some(leaf(n, poster, &[&orgs[0], &orgs[1]])));
    let targeted = matches!(
        gossip_after_growth(&honest, &alice_log, &bob_log, &policy, n),
        Err(LogError::SplitView(..))
    );
    // The control: Bob is served what Alice is.
    let control_gossip = gossip_after_growth(&honest, &alice_log, &alice_log, &policy, n);

    // Global, with vouchers: everyone gets the same extended list; every check passes.
    let global = build(Some(leaf(n, poster, &[&orgs[1], &orgs[2]])));
    let with = matches!(
        check_growth(&honest, &global, &policy, n),
        Err(LogError::Policy { .. })
    );
    // Global, without vouchers.
    let bare = build(Some(leaf(n, poster, &[])));
    let without = matches!(
        check_growth(&honest, &bare, &policy, n),
        Err(LogError::Policy { .. })
    );
    let control_leaf = check_growth(&honest, &alice_log, &policy, n);

    // Hidden entry: the poster is listed for everyone (vouched), but one user is served a head
    // of a fresh size whose sorted tree leaves it out.
    let (lying, proof) = global.dangerous_publish_omitting(T0 + 86_400, &poster);
    let user = Auditor::new(global.operator_key(), policy.clone());
    let verified = user.check_absence(&lying, &poster, &proof).is_ok();
    let monitor = Auditor::new(global.operator_key(), policy.clone());
    let caught = matches!(
        monitor.audit_head(&lying, global.leaves()),
        Err(LogError::SortedRootMismatch(_))
    );
    let control_monitor = [honest.publish(T0), global.publish(T0 + 86_400)]
        .iter()
        .all(|h| monitor.audit_head(h, global.leaves()).is_ok());

    AuditResults {
        targeted_split_view_detected: targeted,
        global_with_vouchers_detected: with,
        global_without_vouchers_detected: without,
        hidden_entry_absence_verified_for_user: verified,
        hidden_entry_detected_by_monitor: caught,
        control_passes: control_gossip.is_ok() && control_leaf.is_ok() && control_monitor,
        list_entries: list.len(),
    }
}

/// Alice sees the honest head, then her grown version; she gossips with Bob, served `bob`.
fn gossip_after_growth(
    honest: &ListLog,
    alice_log: &ListLog,
    bob: &ListLog,
    policy: &Policy,
    n: u64,
) -> Result<(), LogError> {
    let mut alice = Auditor::new(honest.operator_key(), policy.clone());
    alice.observe(&honest.publish(T0), &[], NOW)?;
    let consistency = alice_log.prove_consistency(n).unwrap_or_default();
    alice.observe(&alice_log.publish(T0 + 86_400), &consistency, NOW)?;
    alice.gossip(&bob.publish(T0 + 86_400), &[])
}

/// A client that saw the honest head moves to the new one and checks every new leaf.
fn check_growth(honest: &ListLog, new: &ListLog, policy: &Policy, n: u64) -> Result<(), LogError> {
    let mut c = Auditor::new(honest.operator_key(), policy.clone());
    c.observe(&honest.publish(T0), &[], NOW)?;
    let head = new.publish(T0 + 86_400);
    let consistency = new.prove_consistency(n).unwrap_or_default();
    c.observe(&head, &consistency, NOW)?;
    let leaf = &new.leaves()[n as usize];
    let proof = new.prove_inclusion(n).unwrap_or_default();
    c.check_leaf(&head, leaf, n, &proof)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_attack_is_caught_by_its_own_check_and_the_control_passes() {
        let list: Vec<Hash256> = (0..20u8).map(|i| Hash256::from_bytes([i; 32])).collect();
        let r = run(&list, Hash256::from_bytes([0xEE; 32]));
        assert!(r.targeted_split_view_detected);
        assert!(!r.global_with_vouchers_detected);
        assert!(r.global_without_vouchers_detected);
        assert!(r.hidden_entry_absence_verified_for_user);
        assert!(r.hidden_entry_detected_by_monitor);
        assert!(r.control_passes);
    }
}
