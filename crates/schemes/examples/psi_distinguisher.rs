//! S7's distinguisher experiment ([`scanlab_schemes::psi::distinguisher`]): below the
//! threshold, how well does the provider tell real shares from synthetic ones, and how well
//! does it catch deliberately broken synthetics (the canary)?
//! `cargo run --release -p scanlab-schemes --example psi_distinguisher -- 2000 1`

fn main() {
    let arg = |i: usize, d: u64| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(d)
    };
    let (n, seed) = (arg(1, 2000) as usize, arg(2, 1));
    for broken in [false, true] {
        let d = scanlab_schemes::psi::distinguisher(n, seed, broken);
        println!(
            "{}: best rule on {} training shares uses the {}; {} of {} fresh shares right ({:.3})",
            if broken {
                "canary (broken synthetics)"
            } else {
                "real against synthetic"
            },
            2 * n,
            d.feature,
            d.correct,
            d.guesses,
            d.correct as f64 / d.guesses as f64
        );
    }
}
