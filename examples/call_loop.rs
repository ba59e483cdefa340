//! Calls a trivial kernel through a typed handle in a loop (for profiling
//! the call path): `cargo run --release --example call_loop`.
fn main() {
    let module = kernjit::Jit::new().compile("def add(a, b):\n    return a + b\n").unwrap();
    let typed = module.kernel("add").unwrap().typed::<(f64, f64), f64>().unwrap();
    let started = std::time::Instant::now();
    let mut total = 0.0;
    for k in 0..20_000_000u32 {
        total += typed.call((std::hint::black_box(f64::from(k)), 1.0)).unwrap();
    }
    println!("{:.1} ns per call ({total})", started.elapsed().as_secs_f64() * 1e9 / 2e7);
}
