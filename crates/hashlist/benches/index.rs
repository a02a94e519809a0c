//! Matching speed: the MIH index against a linear scan (its correctness oracle), in the same
//! run, on a seeded 1M-hash list, one thread, radius 31. The FAISS comparison is
//! `scripts/bench-index.sh`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use scanlab_hashlist::{LinearIndex, MihIndex, synth};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("match_1M_r31");
    g.sample_size(10);
    for shape in [synth::Shape::Uniform, synth::Shape::Clustered] {
        let list = synth::list(1_000_000, shape, 1);
        let qs = synth::queries(&list, 100, 1);
        let mih = MihIndex::build(&list).unwrap();
        let lin = LinearIndex::new(&list);
        let want: Vec<usize> = qs.iter().map(|q| lin.query(q, 31).len()).collect();
        g.throughput(Throughput::Elements(qs.len() as u64));
        g.bench_function(format!("mih/{shape:?}"), |b| {
            b.iter(|| {
                for (q, w) in qs.iter().zip(&want) {
                    assert_eq!(mih.query(black_box(q), 31).unwrap().len(), *w);
                }
            })
        });
        g.bench_function(format!("linear/{shape:?}"), |b| {
            b.iter(|| {
                for (q, w) in qs.iter().zip(&want) {
                    assert_eq!(lin.query(black_box(q), 31).len(), *w);
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
