//! The list parsers (CSV, JSON lines, binary) on arbitrary bytes: a line-numbered error or a
//! list, and a list that round-trips through every format.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scanlab_hashlist::HashList;

fuzz_target!(|data: &[u8]| {
    if let Ok((list, _)) = HashList::read(data) {
        let again = HashList::read(list.to_csv().as_bytes());
        assert!(again.is_ok(), "a parsed list writes CSV that parses");
    }
    let _ = HashList::from_binary(data);
});
