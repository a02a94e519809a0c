//! Bit-exactness against Meta's C++ PDQ core on the 395-photo dev corpus (installed on demand
//! from Debian packages, see `scanlab-corpus`).

mod common;

#[test]
fn dev_corpus_is_bit_exact() {
    let root = common::shared();
    let corpus = scanlab_corpus::ensure(&scanlab_corpus::default_cache_dir(), &mut |m| {
        eprintln!("corpus: {m}")
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let o = common::check_golden(&root.join("golden/dev-corpus.csv"), |f| {
        corpus.images_dir.join(f)
    });
    eprintln!(
        "dev corpus: {} rows with Pillow's exact pixels, all ten values equal",
        o.exact
    );
    let mut hist = std::collections::BTreeMap::new();
    for (f, d) in &o.pixel_mismatch {
        eprintln!("  pixels differ from Pillow's: {f}: Hamming distance {d}");
        *hist.entry(*d).or_insert(0) += 1;
    }
    eprintln!("  distance histogram on rows whose pixels differ: {hist:?}");
    assert_eq!(o.exact + o.pixel_mismatch.len(), 395);
    // Measured: every row decodes to Pillow's exact bytes with libjpeg-turbo 3.
    assert_eq!(o.exact, 395, "{:?}", o.pixel_mismatch);
    assert_eq!(o.png_copies, 395);
}
