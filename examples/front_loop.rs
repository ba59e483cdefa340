//! Parses a .kern file and specialises one kernel repeatedly, printing the
//! mean time of each: `cargo run --release --example front_loop -- FILE SIGNATURE N`
//! (for profiling the front end, e.g. under `perf record`).
use kernjit::types::parse_signature;
use kernjit::Module;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let source = std::fs::read(&args[1]).unwrap();
    let sig = parse_signature(&args[2]).unwrap();
    let n: usize = args[3].parse().unwrap();
    let (mut parse, mut infer) = (0.0, 0.0);
    for _ in 0..n {
        let t = std::time::Instant::now();
        let module = Module::parse(&args[1], &source).unwrap();
        parse += t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let program = module.specialise(&sig.kernel, &sig.args).unwrap();
        infer += t.elapsed().as_secs_f64();
        drop(program);
    }
    let per = |seconds: f64| seconds * 1e6 / n as f64;
    println!("parse {:.1} µs, specialise {:.1} µs", per(parse), per(infer));
}
