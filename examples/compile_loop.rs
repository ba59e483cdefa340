//! Compiles one kernel of a .kern file repeatedly and prints the mean time per
//! compile: `cargo run --release --example compile_loop -- FILE SIGNATURE N`
//! (for profiling the compiler, e.g. under `perf record`). With `PASSES=1`
//! set, it also prints the time of each Cranelift pass, summed over the runs.
use kernjit::jit::engine::CompiledProgram;
use kernjit::jit::lower::LowerOptions;
use kernjit::types::parse_signature;
use kernjit::Module;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let source = std::fs::read(&args[1]).unwrap();
    let module = Module::parse(&args[1], &source).unwrap();
    let sig = parse_signature(&args[2]).unwrap();
    let program = module.specialise(&sig.kernel, &sig.args).unwrap();
    let options = LowerOptions {
        boundscheck: args.get(4).map(String::as_str) != Some("nobounds"),
        verify: false,
        layouts: sig.layouts.clone(),
        threads: None,
        parallel_min_trips: None,
        optimize: true,
    };
    let n: usize = args[3].parse().unwrap();
    let t = std::time::Instant::now();
    let (mut lower, mut cranelift) = (0.0, 0.0);
    for _ in 0..n {
        let compiled = CompiledProgram::compile(&program, &options, false).unwrap();
        lower += compiled.phases.lower.as_secs_f64();
        cranelift += compiled.phases.cranelift.as_secs_f64();
    }
    if std::env::var_os("PASSES").is_some() {
        println!("{}", cranelift_codegen::timing::take_current());
    }
    let per = |seconds: f64| seconds * 1e3 / n as f64;
    println!(
        "{:.3} ms per compile (lower {:.3}, cranelift {:.3})",
        per(t.elapsed().as_secs_f64()),
        per(lower),
        per(cranelift)
    );
}
