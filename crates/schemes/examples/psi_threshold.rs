//! S7 at the level of accounts, with the real construction: how many accounts are flagged
//! (their key recovered) against the threshold t and the number of listed images each sends,
//! with synthetic vouchers at rate p; and how many vouchers the provider needs to tell, from
//! the rate at which an account's vouchers open, an account holding listed images from one
//! holding none, below t.
//! `cargo run --release -p scanlab-schemes --example psi_threshold -- 20 1`

use rand::{RngCore, SeedableRng};
use scanlab_schemes::psi::{Device, Share, Table, Threshold, recover};

fn main() {
    let arg = |i: usize, d: u64| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(d)
    };
    let (accounts, seed) = (arg(1, 20) as usize, arg(2, 1));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let item = |rng: &mut rand_chacha::ChaCha8Rng| {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        b
    };
    let list: Vec<[u8; 32]> = (0..200).map(|_| item(&mut rng)).collect();
    let (table, key, _) = Table::build(&list, 1.1, &mut rng).expect("table");
    let (p, sent) = (0.1, 50usize);
    println!("accounts flagged of {accounts}, each sending {sent} images, p = {p}, s = 2:");
    println!(
        "listed sent:  {}",
        [0, 1, 2, 3, 5, 10, 20].map(|m| format!("{m:>4}")).join("")
    );
    for t in [1, 2, 3, 5, 10] {
        let th = Threshold { t, s: 2 };
        let mut row = Vec::new();
        for m in [0usize, 1, 2, 3, 5, 10, 20] {
            let mut flagged = 0;
            for _ in 0..accounts {
                let mut s = [0u8; 32];
                rng.fill_bytes(&mut s);
                let device = Device::from_seed(s, th).expect("device");
                let mut shares: Vec<Share> = Vec::new();
                for i in 0..sent {
                    let image = if i < m {
                        list[(rng.next_u32() as usize) % list.len()]
                    } else {
                        item(&mut rng)
                    };
                    let v = if device.is_synthetic(&image, p) {
                        device.synthetic(&table, &image, &mut rng)
                    } else {
                        device.voucher(&table, &image, b"thumbnail", &mut rng)
                    }
                    .expect("voucher");
                    if let Some(sh) = key.open(&th, &v).expect("opens")
                        && !shares.iter().any(|x| x.x == sh.x)
                    {
                        shares.push(sh);
                    }
                }
                flagged += usize::from(recover(&shares, &th).is_some());
            }
            row.push(format!("{flagged:>4}"));
        }
        println!("t = {t:<2}        {}", row.join(""));
    }
    // The rate signal: an account's opened count against p·N. A one-sided test at 5% false
    // alarms over accounts with no listed images, and its power over accounts with 5% of their
    // images listed, as the vouchers grow (the device's own coins decide the synthetics).
    println!("\nvouchers: false alarms / detections, of 200 accounts each (5% of images listed):");
    for n in [25usize, 50, 100, 200, 400, 800] {
        let bound = p * n as f64 + 1.645 * (n as f64 * p * (1.0 - p)).sqrt();
        let count = |listed_rate: f64, rng: &mut rand_chacha::ChaCha8Rng| {
            (0..200)
                .filter(|_| {
                    let mut s = [0u8; 32];
                    rng.fill_bytes(&mut s);
                    let d = Device::from_seed(s, Threshold { t: 3, s: 2 }).expect("device");
                    let opened = (0..n)
                        .filter(|_| {
                            let image = item(rng);
                            let listed = (rng.next_u32() as f64 / u32::MAX as f64) < listed_rate;
                            d.is_synthetic(&image, p) || listed
                        })
                        .count();
                    opened as f64 > bound
                })
                .count()
        };
        let (fa, det) = (count(0.0, &mut rng), count(0.05, &mut rng));
        println!("  {n:>4}: {fa:>3} / {det:>3}");
    }
}
