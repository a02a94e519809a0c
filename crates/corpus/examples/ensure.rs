fn main() {
    let dir = scanlab_corpus::default_cache_dir();
    let t = std::time::Instant::now();
    let c = scanlab_corpus::ensure(&dir, &mut |m| eprintln!("{m}")).unwrap();
    println!(
        "{} in {} ({:?})",
        c.entries.len(),
        c.images_dir.display(),
        t.elapsed()
    );
}
