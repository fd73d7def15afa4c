//! How long synthesizing every stage's template takes: the stack built from the contract and
//! serialized to JSON, as `cargo xtask synth` does. Run with `cargo xtask bench`.

use std::hint::black_box;
use std::time::Instant;

const ITERATIONS: usize = 2_000;

fn main() {
    let stages = stacks::stages::all();
    let mut samples = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        let start = Instant::now();
        for stage in &stages {
            let template = stacks::synthesize(&contract::CONTRACT, stage).expect("every stage synthesizes");
            black_box(template.to_json());
        }
        samples.push(start.elapsed());
    }
    samples.sort_unstable();
    let micros = |index: usize| samples[index].as_secs_f64() * 1e6;
    println!(
        "synthesize every stage ({} stages, {ITERATIONS} runs): p50 {:.0} µs   p99 {:.0} µs",
        stages.len(),
        micros(ITERATIONS / 2),
        micros(ITERATIONS * 99 / 100)
    );
}
