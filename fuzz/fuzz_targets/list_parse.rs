//! The list parsers (CSV, JSON lines, binary) on arbitrary bytes: a line-numbered error or a
//! list, and a list that reads back equal from the CSV and JSON lines it writes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scanlab_hashlist::HashList;

fuzz_target!(|data: &[u8]| {
    if let Ok((list, _)) = HashList::read(data) {
        let csv = HashList::read(list.to_csv().as_bytes());
        assert_eq!(csv.ok().map(|r| r.0), Some(list.clone()), "CSV round trip");
        let jsonl = HashList::read(list.to_jsonl().as_bytes());
        assert_eq!(jsonl.ok().map(|r| r.0), Some(list), "JSON lines round trip");
    }
    let _ = HashList::from_binary(data);
});
