//! The `kernjit` command line: `kernjit check FILE` type-checks a `.kern`
//! file, `kernjit run FILE KERNEL ARGS...` calls one kernel and prints its
//! result and a summary of every array argument.
//!
//! This is the only place that prints diagnostics and picks exit codes: 0 on
//! success, 1 for a user error (a syntax, type or runtime error in the
//! kernel, a bad argument, a missing file), 2 for a usage error (reported by
//! clap). It must not panic on any input: every failure is a `Failure` value
//! that `main` turns into text on stderr and an exit code.

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use kernjit::cli_args::{self, ArgSpec};
use kernjit::types::{self, Signature};
use kernjit::{show, ArrayData, Error, Module, Options, Scalar, Type, Value};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

const CHECK_EXAMPLES: &str = "\
Examples:
  kernjit check kernels/kepler.kern
  kernjit check stencil.kern --sig 'blur(f64[:, :], f64[:, :])' --sig 'blur(f32[:, :], f32[:, :])'

Every kernel whose parameters are all annotated is checked, then every --sig,
then the signature of every `# run: kernel(ARGS...)` and `# bench: kernel(ARGS...)`
comment line in the file (without running them).";

const RUN_EXAMPLES: &str = "\
Examples:
  kernjit run kernels/kepler.kern eccentric_anomaly_grid 'randn(40)' 'rand(9)' 1e-12 50 'zeros(40, 9)'
  kernjit run sum.kern total 'rand(1000):f32' --json
  kernjit run scale.kern scale @input.npy -1.5 -o out/

Argument syntax:
  2.5  7  -3  true  false        f64, i64, i64, bool, bool
  i32:7  f32:2.5  u8:3  bool:1   typed scalars
  @data.npy                      an array from an .npy file
  zeros(d0, ...)  ones(...)  full(d0, ..., v)  arange(...)  rand(...)  randn(...)
                                 generated arrays (1 to 3 dimensions), each with an
                                 optional :dtype suffix, as in rand(64, 64):f32

rand and randn draw from one splitmix64 stream seeded by --seed, consumed left to
right, so a run is reproducible (and matches tests/cpython/run_kern.py).";

/// A JIT compiler for numeric kernels written in a Python subset.
#[derive(Parser, Debug)]
#[command(name = "kernjit", version, about, propagate_version = true, after_help = MAIN_EXAMPLES)]
struct Cli {
    /// When to colour diagnostics on stderr.
    #[arg(long, value_enum, global = true, default_value_t = ColorWhen::Auto, value_name = "WHEN")]
    color: ColorWhen,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ColorWhen {
    /// Colour when stderr is a terminal (and NO_COLOR is not set).
    Auto,
    Always,
    Never,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse and type-check .kern files: annotated kernels, --sig signatures,
    /// `# run:` and `# bench:` lines.
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// Run one kernel on the given arguments and summarise the result.
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Show a kernel at one stage of compilation: the syntax tree, the typed
    /// program, Cranelift IR, or machine code.
    #[command(after_help = DUMP_EXAMPLES)]
    Dump(DumpArgs),
    /// Measure the `# bench:` calls of .kern files: cold compile, first
    /// call, steady state, throughput and thread scaling.
    #[command(after_help = BENCH_EXAMPLES)]
    Bench(BenchArgs),
    /// Print a shell completion script.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  kernjit completions bash > ~/.local/share/bash-completion/completions/kernjit
  kernjit completions zsh > ~/.zfunc/_kernjit
  kernjit completions fish > ~/.config/fish/completions/kernjit.fish";

const MAIN_EXAMPLES: &str = "\
Examples:
  kernjit check kernels/                          # type-check every kernel and run/bench line
  kernjit run kernels/kepler.kern eccentric_anomaly_grid 'randn(40)' 'rand(9)' 1e-12 50 'zeros(40, 9)'
  kernjit dump kernels/axpy_dot.kern dot --sig '(f64[:], f64[:])' --stage asm
  kernjit bench kernels/ --threads 1,2 --plot bench.svg

Exit status:
  0  success
  1  a user error: a syntax, type or runtime error in a kernel, a bad argument,
     a missing or unreadable file (the diagnostic is on stderr)
  2  a usage error: unknown option, missing or malformed option value

Environment:
  KERNJIT_NUM_THREADS, OMP_NUM_THREADS   threads for prange loops (default: all cores)
  NO_COLOR                               no colour on stderr with --color auto";

const BENCH_EXAMPLES: &str = "\
Examples:
  kernjit bench                                  # every bench line in kernels/
  kernjit bench kernels/mandelbrot.kern --threads 1,2
  kernjit bench --filter dot --reps 20 --json
  kernjit bench --threads 1,2 --plot bench.svg

A bench line is a comment `# bench: KERNEL(ARG, ...)` with the arguments of
`kernjit run` (@path.npy relative to the .kern file). Times: compile is
source text to callable machine code; first call is the call after it;
median/min/max are over the steady-state repetitions.";

#[derive(Args, Debug)]
struct BenchArgs {
    /// .kern files or directories (default: kernels/).
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Thread counts to measure, one row each: `1,2` (default: 1 and the
    /// default thread count, KERNJIT_NUM_THREADS or all cores).
    #[arg(long, value_name = "N,...", value_delimiter = ',', value_parser = parse_threads)]
    threads: Vec<usize>,
    /// Steady-state repetitions (default: as many as fit in --time).
    #[arg(long, value_name = "N")]
    reps: Option<usize>,
    /// Seconds of steady state per row when --reps is not given.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    time: f64,
    /// Also run the reference interpreter, for comparison.
    #[arg(long)]
    interp: bool,
    /// Only bench lines whose call contains this text.
    #[arg(long, value_name = "TEXT")]
    filter: Option<String>,
    /// Seed of the random generators.
    #[arg(long, default_value_t = 42, value_name = "N")]
    seed: u64,
    /// One JSON object per row on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Also draw the rows as an SVG chart: compile and call times, thread
    /// scaling.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Show compile time per phase.
    #[arg(short, long)]
    verbose: bool,
}

const DUMP_EXAMPLES: &str = "\
Examples:
  kernjit dump kernels/axpy_dot.kern dot --sig 'dot(f64[:], f64[:])'
  kernjit dump kernels/axpy_dot.kern dot --sig '(f32[:], f32[:])' --stage clif
  kernjit dump kernels/mandelbrot.kern escape_time --sig '(f64, f64, i64)' --stage asm

Without --sig, a kernel whose parameters are all annotated uses its annotations.";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Stage {
    /// The parsed syntax tree of the kernel.
    Ast,
    /// Every expression of the specialised program with its type.
    Typed,
    /// Cranelift IR of every function.
    Clif,
    /// Machine code (Cranelift's disassembly).
    Asm,
}

#[derive(Args, Debug)]
struct DumpArgs {
    /// The .kern file.
    file: PathBuf,
    /// The kernel to show.
    kernel: String,
    /// The argument types, `kernel(f64, f64[:])` or `(f64, f64[:])`.
    #[arg(long = "sig", value_name = "SIGNATURE")]
    signature: Option<String>,
    /// What to show.
    #[arg(long, value_enum, default_value_t = Stage::Typed)]
    stage: Stage,
    /// Compile without bounds checks (for --stage clif/asm).
    #[arg(long)]
    no_boundscheck: bool,
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// The .kern files, or directories whose .kern files are all checked.
    #[arg(value_name = "PATH", required = true)]
    paths: Vec<PathBuf>,
    /// Also check this signature, written `kernel(f64, f64[:])`. Repeatable.
    #[arg(long = "sig", value_name = "SIGNATURE")]
    signatures: Vec<String>,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The .kern file.
    file: PathBuf,
    /// The kernel (top-level function) to call.
    kernel: String,
    /// The kernel's arguments (see the syntax below).
    #[arg(value_name = "ARG", allow_negative_numbers = true)]
    args: Vec<String>,
    /// Run in the reference interpreter instead of compiling to machine code.
    #[arg(long)]
    interp: bool,
    /// Compile without bounds checks (an out-of-bounds index is then
    /// undefined, as in Numba).
    #[arg(long)]
    no_boundscheck: bool,
    /// Threads for prange loops (default: KERNJIT_NUM_THREADS, else
    /// OMP_NUM_THREADS, else all cores). Results do not depend on it.
    #[arg(long, value_name = "N", value_parser = parse_threads)]
    threads: Option<usize>,
    /// Seed of the random generators rand(...) and randn(...).
    #[arg(long, default_value_t = 42, value_name = "N")]
    seed: u64,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    json: bool,
    /// Write every array argument (after the call) as DIR/argN.npy and an array
    /// result as DIR/result.npy.
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    output_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(protect_negative_numbers(std::env::args_os().collect())) {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version go to stdout with exit 0; usage errors exit 2.
            let _ = error.print();
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
        }
    };
    let color = use_color(cli.color);
    let result = match cli.command {
        Command::Check(args) => check_paths(&args, color),
        Command::Run(args) => run(&args),
        Command::Dump(args) => dump(&args),
        Command::Bench(args) => bench_lines(&args, color),
        Command::Completions { shell } => completions(shell),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            failure.report(color);
            ExitCode::from(1)
        }
    }
}

/// Makes every negative scalar among `run`'s arguments unmistakable for clap.
///
/// clap takes `-1.5` and `-2` as values, but `-1e-3`, `-0x10` or `-inf` would
/// look like short flags; such a token is rewritten to its typed form
/// (`f64:-1e-3`), which means the same argument. Option values (`--seed -1`)
/// and everything after `--` are left alone.
fn protect_negative_numbers(argv: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    const OPTIONS_WITH_VALUES: [&str; 4] = ["--seed", "-o", "--output-dir", "--color"];
    let mut in_run = false;
    let mut after_separator = false;
    let mut previous_takes_value = false;
    let mut rewritten = Vec::with_capacity(argv.len());
    for (position, token) in argv.into_iter().enumerate() {
        let text = token.to_str().unwrap_or("");
        after_separator |= text == "--";
        let mut replacement = None;
        if in_run && !after_separator && !previous_takes_value && text.starts_with('-') && !text.starts_with("--") {
            if let Ok(ArgSpec::Scalar(scalar)) = cli_args::parse_arg(text) {
                replacement = Some(std::ffi::OsString::from(format!("{}:{text}", scalar.ty())));
            }
        }
        in_run |= position > 0 && text == "run";
        previous_takes_value = OPTIONS_WITH_VALUES.contains(&text);
        rewritten.push(replacement.unwrap_or(token));
    }
    rewritten
}

// ---------------------------------------------------------------------------
// Failures

/// Why a command failed (always exit code 1).
#[derive(Debug)]
enum Failure {
    /// A library error with its diagnostics.
    Kern(Error),
    /// A one-line message, printed as `error: MESSAGE`.
    Message(String),
    /// Everything was already printed (`check` reports all its errors).
    Reported,
}

impl Failure {
    fn report(&self, color: bool) {
        match self {
            Failure::Kern(error) => write_stderr(&error.render(color)),
            Failure::Message(message) => write_stderr(&error_line(message, color)),
            Failure::Reported => {}
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure::Kern(error)
    }
}

/// `error: MESSAGE` with a newline, the word `error` in bold red when colour
/// is on (as the rendered diagnostics have it).
fn error_line(message: &str, color: bool) -> String {
    if color {
        format!("\x1b[1m\x1b[38;5;9merror\x1b[0m\x1b[1m: {message}\x1b[0m\n")
    } else {
        format!("error: {message}\n")
    }
}

fn use_color(when: ColorWhen) -> bool {
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    }
}

/// Writes to stderr, ignoring failures (there is nowhere left to report them).
fn write_stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Writes the command's output to stdout. A closed pipe (`| head`) is not an
/// error; any other write failure is.
fn write_stdout(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(Failure::Message(format!("cannot write to stdout: {error}"))),
    }
}

/// The error for a kernel name the module does not define.
fn unknown_kernel(module: &Module, file: &Path, kernel: &str) -> String {
    let names = module.kernel_names();
    let known =
        if names.is_empty() { "it defines no kernels".to_string() } else { format!("kernels: {}", names.join(", ")) };
    format!("no kernel named `{kernel}` in {} ({known})", file.display())
}

/// `kernjit completions SHELL`: the completion script on stdout.
fn completions(shell: clap_complete::Shell) -> Result<(), Failure> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "kernjit", &mut script);
    write_stdout(&String::from_utf8_lossy(&script))
}

// ---------------------------------------------------------------------------
// check

/// `kernjit check PATH...`: checks every file (directories contribute their
/// `.kern` files, sorted). Each `--sig` applies to the files that define its
/// kernel, and must match at least one.
fn check_paths(args: &CheckArgs, color: bool) -> Result<(), Failure> {
    let files = kern_files(&args.paths)?;
    let several = files.len() > 1;
    let mut failed = false;
    let mut matched = vec![false; args.signatures.len()];
    for file in &files {
        match check(file, &args.signatures, several, &mut matched, color) {
            Ok(()) => {}
            Err(failure) => {
                failure.report(color);
                failed = true;
            }
        }
    }
    for (text, matched) in args.signatures.iter().zip(matched) {
        if several && !matched {
            Failure::Message(format!("--sig '{text}': no checked file defines this kernel")).report(color);
            failed = true;
        }
    }
    if failed {
        Err(Failure::Reported)
    } else {
        Ok(())
    }
}

/// Checks one file. With `several` files, a `--sig` whose kernel this file
/// does not define is skipped (`matched` records which ones applied).
fn check(file: &Path, signatures: &[String], several: bool, matched: &mut [bool], color: bool) -> Result<(), Failure> {
    let module = Module::parse_file(file)?;
    let mut failed = false;
    let mut report = |failure: Failure, note: Option<String>| {
        failure.report(color);
        if let Some(note) = note {
            write_stderr(&format!("note: {note}\n"));
        }
        failed = true;
    };

    let mut signatures_checked = 0;
    signatures_checked += module
        .ast()
        .functions
        .iter()
        .filter(|function| matches!(kernjit::infer::annotated_signature(function), Ok(Some(_))))
        .count();
    if let Err(error) = module.check_annotated() {
        report(error.into(), None);
    }

    for (index, text) in signatures.iter().enumerate() {
        let note = Some(format!("while checking --sig '{text}'"));
        let signature = match types::parse_signature(text) {
            Ok(signature) => signature,
            Err(message) => {
                report(Failure::Message(format!("--sig '{text}': {message}")), None);
                continue;
            }
        };
        if !module.kernel_names().contains(&signature.kernel.as_str()) {
            if !several {
                report(
                    Failure::Message(format!("--sig '{text}': {}", unknown_kernel(&module, file, &signature.kernel))),
                    None,
                );
            }
            continue;
        }
        matched[index] = true;
        signatures_checked += 1;
        if let Err(error) = module.specialise(&signature.kernel, &signature.args) {
            report(error.into(), note);
        }
    }

    let source = module.source().text().to_string();
    let base_dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
    let run_lines = cli_args::run_lines(&source).into_iter().map(|(line, call)| ("run", line, call));
    let bench_lines = cli_args::bench_lines(&source).into_iter().map(|(line, call)| ("bench", line, call));
    for (what, line, call) in run_lines.chain(bench_lines) {
        let place = format!("{}:{line}", file.display());
        match run_line_types(&module, file, &call, &base_dir) {
            Ok((kernel, arg_types)) => {
                signatures_checked += 1;
                if let Err(error) = module.specialise(&kernel, &arg_types) {
                    let signature = Signature::new(kernel, arg_types);
                    report(
                        error.into(),
                        Some(format!("while checking the {what} line at {place}: {call} (signature {signature})")),
                    );
                }
            }
            Err(message) => report(Failure::Message(format!("{place}: {what} line `{call}`: {message}")), None),
        }
    }

    if failed {
        return Err(Failure::Reported);
    }
    let kernels = module.kernel_names().len();
    write_stdout(&format!(
        "ok: {} ({kernels} {}, {signatures_checked} {} checked)\n",
        file.display(),
        plural(kernels, "kernel"),
        plural(signatures_checked, "signature")
    ))
}

/// `kernjit dump`: one kernel at one stage.
fn dump(args: &DumpArgs) -> Result<(), Failure> {
    let module = Module::parse_file(&args.file)?;
    if !module.kernel_names().contains(&args.kernel.as_str()) {
        return Err(Failure::Message(unknown_kernel(&module, &args.file, &args.kernel)));
    }
    let function = module.ast().functions.iter().find(|f| f.name.name == args.kernel).expect("checked above");
    if args.stage == Stage::Ast {
        return write_stdout(&format!("{function:#?}\n"));
    }
    let (types, layouts) = match &args.signature {
        Some(text) => {
            let text = if text.trim_start().starts_with('(') { format!("{}{text}", args.kernel) } else { text.clone() };
            let signature = types::parse_signature(&text).map_err(|m| Failure::Message(format!("--sig: {m}")))?;
            if signature.kernel != args.kernel {
                return Err(Failure::Message(format!(
                    "--sig names `{}` but the kernel to dump is `{}`",
                    signature.kernel, args.kernel
                )));
            }
            (signature.args, signature.layouts)
        }
        None => match kernjit::infer::annotated_signature(function) {
            Ok(Some(types)) => {
                let layouts = vec![kernjit::Layout::Any; types.len()];
                (types, layouts)
            }
            _ => {
                return Err(Failure::Message(format!(
                    "`{}` is generic: give its argument types with --sig '({})'",
                    args.kernel,
                    vec!["..."; function.params.len()].join(", ")
                )))
            }
        },
    };
    let program = module.specialise(&args.kernel, &types)?;
    let text = match args.stage {
        Stage::Ast => unreachable!("handled above"),
        Stage::Typed => kernjit::tir::expression_types(&program, module.source()),
        Stage::Clif | Stage::Asm => {
            let options = kernjit::jit::lower::LowerOptions {
                boundscheck: !args.no_boundscheck,
                verify: true,
                layouts,
                threads: None,
                parallel_min_trips: None,
                optimize: true,
            };
            let asm = args.stage == Stage::Asm;
            let lowered = kernjit::jit::lower::lower_with_listings(&program, &options, !asm, asm)
                .map_err(|m| Failure::Message(format!("code generation failed (a kernjit bug): {m}")))?;
            let checks = lowered.checks;
            let mut header = format!(
                "; bounds checks: {} kept, {} hoisted (checked once before their loop), {} removed (proven in range)\n",
                checks.kept, checks.hoisted, checks.removed
            );
            for parallel in &lowered.parallel_loops {
                let reductions: Vec<String> = parallel.reductions.iter().map(|op| format!("{op:?}")).collect();
                header.push_str(&format!(
                    "; prange at {} in {}: parallel (body `{}`, serial below {} trips), reductions [{}]\n",
                    module.source().line_col(parallel.span.start),
                    parallel.function,
                    parallel.body,
                    parallel.min_trips,
                    reductions.join(", ")
                ));
            }
            let (clif, asm_text) = lowered.into_listings();
            let listing = if asm { asm_text } else { clif }.unwrap_or_default();
            format!("{header}{listing}")
        }
    };
    write_stdout(&text)
}

/// The kernel and argument types of one `# run:` line, without allocating
/// its arrays.
fn run_line_types(module: &Module, file: &Path, call: &str, base_dir: &Path) -> Result<(String, Vec<Type>), String> {
    let (kernel, arg_texts) = cli_args::parse_call(call)?;
    if !module.kernel_names().contains(&kernel.as_str()) {
        return Err(unknown_kernel(module, file, &kernel));
    }
    let mut arg_types = Vec::with_capacity(arg_texts.len());
    for (index, text) in arg_texts.iter().enumerate() {
        let ty = cli_args::parse_arg(text)
            .and_then(|spec| spec.ty(base_dir))
            .map_err(|message| format!("argument {index}: {message}"))?;
        arg_types.push(ty);
    }
    Ok((kernel, arg_types))
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        noun.to_string()
    } else {
        format!("{noun}s")
    }
}

// ---------------------------------------------------------------------------
// run

/// Which engine executes a kernel. Selected in [`Engine::select`] only, so
/// the JIT slots in there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    Interpreter,
    Jit,
}

impl Engine {
    /// The engine used without `--interp`: machine code from the JIT.
    const DEFAULT: Engine = Engine::Jit;

    /// `--interp` forces the interpreter; otherwise the default engine.
    fn select(interp: bool) -> Engine {
        if interp {
            return Engine::Interpreter;
        }
        Engine::DEFAULT
    }

    /// Prepares `kernel` for these argument types: specialise (interpreter),
    /// or specialise and compile to machine code (JIT).
    fn compile(self, module: &Module, signature: &Signature) -> Result<(), Error> {
        match self {
            Engine::Interpreter => module.specialise(&signature.kernel, &signature.args).map(drop),
            Engine::Jit => module.compiled(&signature.kernel, &signature.args, &signature.layouts).map(drop),
        }
    }

    /// Calls `kernel`; array arguments are updated in place.
    fn call(self, module: &Module, kernel: &str, args: &mut [Value]) -> Result<Value, Error> {
        match self {
            Engine::Interpreter => module.interpret(kernel, args),
            Engine::Jit => module.run(kernel, args),
        }
    }
}

fn run(args: &RunArgs) -> Result<(), Failure> {
    let engine = Engine::select(args.interp);
    let parse_start = Instant::now();
    let options = Options { boundscheck: !args.no_boundscheck, threads: args.threads, ..Options::default() };
    let module = Module::parse_file(&args.file)?.with_options(options);
    let parse_time = parse_start.elapsed();

    // Arguments are checked (and .npy headers read) before anything is
    // allocated, so a bad argument is reported cheaply.
    let mut specs: Vec<ArgSpec> = Vec::with_capacity(args.args.len());
    for (index, text) in args.args.iter().enumerate() {
        let spec = cli_args::parse_arg(text)
            .and_then(|spec| spec.ty(Path::new("")).map(|_| spec))
            .map_err(|message| Failure::Message(format!("argument {index}: {message}")))?;
        specs.push(spec);
    }
    if !module.kernel_names().contains(&args.kernel.as_str()) {
        return Err(Failure::Message(unknown_kernel(&module, &args.file, &args.kernel)));
    }
    let mut values = cli_args::materialise(&specs, args.seed, Path::new("")).map_err(Failure::Message)?;
    let signature = Signature {
        kernel: args.kernel.clone(),
        args: values.iter().map(Value::ty).collect(),
        layouts: values.iter().map(Value::layout).collect(),
    };

    let compile_start = Instant::now();
    engine.compile(&module, &signature)?;
    let compile_ms = (parse_time + compile_start.elapsed()).as_secs_f64() * 1e3;
    let run_start = Instant::now();
    let result = engine.call(&module, &args.kernel, &mut values)?;
    let run_ms = run_start.elapsed().as_secs_f64() * 1e3;

    if let Some(dir) = &args.output_dir {
        write_arrays(dir, &values, &result)?;
    }
    if args.json {
        let object = json!({
            "kernel": args.kernel,
            "signature": signature.to_string(),
            "result": result_json(&result),
            "args": array_args(&values)
                .map(|(index, array)| {
                    let mut entry = array_json(array);
                    entry["index"] = json!(index);
                    entry
                })
                .collect::<Vec<_>>(),
            "compile_ms": compile_ms,
            "run_ms": run_ms,
        });
        write_stdout(&format!("{object}\n"))
    } else {
        let mut out = String::new();
        match &result {
            Value::None => {}
            Value::Array(array) => out.push_str(&format!("result: {}\n", show::array_text(array))),
            scalar_or_tuple => out.push_str(&format!("result: {}\n", show::value_text(scalar_or_tuple))),
        }
        for (index, array) in array_args(&values) {
            out.push_str(&format!("arg {index} `{}`: {}\n", args.args[index], show::array_text(array)));
        }
        write_stdout(&out)?;
        write_stderr(&format!("compile {compile_ms:.3} ms, run {run_ms:.3} ms\n"));
        Ok(())
    }
}

/// The array arguments with their positions among all arguments.
fn array_args(values: &[Value]) -> impl Iterator<Item = (usize, &ArrayData)> {
    values.iter().enumerate().filter_map(|(index, value)| match value {
        Value::Array(array) => Some((index, array)),
        _ => None,
    })
}

/// Writes `DIR/argN.npy` for every array argument and `DIR/result.npy` for
/// an array result.
fn write_arrays(dir: &Path, values: &[Value], result: &Value) -> Result<(), Failure> {
    std::fs::create_dir_all(dir)
        .map_err(|error| Failure::Message(format!("cannot create {}: {error}", dir.display())))?;
    for (index, array) in array_args(values) {
        cli_args::write_npy(&dir.join(format!("arg{index}.npy")), array).map_err(Failure::Message)?;
    }
    if let Value::Array(array) = result {
        cli_args::write_npy(&dir.join("result.npy"), array).map_err(Failure::Message)?;
    }
    Ok(())
}

fn result_json(result: &Value) -> serde_json::Value {
    match result {
        Value::Scalar(scalar) => scalar_json(*scalar),
        Value::Tuple(items) => serde_json::Value::Array(items.iter().map(|s| scalar_json(*s)).collect()),
        Value::Array(array) => array_json(array),
        Value::None => serde_json::Value::Null,
    }
}

fn array_json(array: &ArrayData) -> serde_json::Value {
    json!({ "dtype": array.dtype().name(), "shape": array.shape(), "sum": float_json(array.sum_f64()) })
}

fn scalar_json(scalar: Scalar) -> serde_json::Value {
    match scalar {
        Scalar::Bool(v) => json!(v),
        Scalar::U64(v) => json!(v),
        Scalar::F32(v) => float_json(v as f64),
        Scalar::F64(v) => float_json(v),
        int => json!(int.to_i128() as i64),
    }
}

/// A float as a JSON number, or the strings "nan", "inf", "-inf".
fn float_json(value: f64) -> serde_json::Value {
    if value.is_nan() {
        json!("nan")
    } else if value.is_infinite() {
        json!(if value > 0.0 { "inf" } else { "-inf" })
    } else {
        json!(value)
    }
}

/// `--threads N`: 1 to `pool::MAX_THREADS`.
fn parse_threads(text: &str) -> Result<usize, String> {
    let max = kernjit::jit::pool::MAX_THREADS;
    match text.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("expected a thread count from 1 to {max}")),
    }
}

/// The files named by `paths`: files as given, directories as their `.kern`
/// files, sorted (a directory without any is an error).
fn kern_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Failure> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries =
                std::fs::read_dir(path).map_err(|error| Failure::Message(format!("{}: {error}", path.display())))?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "kern"))
                .collect();
            if found.is_empty() {
                return Err(Failure::Message(format!("{}: no .kern files in this directory", path.display())));
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// `kernjit bench`: one row per bench line, thread count and engine.
fn bench_lines(args: &BenchArgs, color: bool) -> Result<(), Failure> {
    use kernjit::bench::report::{self, Row};
    use kernjit::bench::{self, BenchError, BenchOptions};
    let paths = if args.paths.is_empty() { vec![PathBuf::from("kernels")] } else { args.paths.clone() };
    if !(args.time > 0.0 && args.time <= 3600.0) {
        return Err(Failure::Message("--time takes seconds, more than 0 and at most 3600".into()));
    }
    let mut lines = Vec::new();
    for file in kern_files(&paths)? {
        let source = std::fs::read(&file).map_err(|error| Failure::Message(format!("{}: {error}", file.display())))?;
        let text = String::from_utf8_lossy(&source).into_owned();
        for (line, call) in cli_args::bench_lines(&text) {
            if args.filter.as_ref().is_none_or(|filter| call.contains(filter.as_str())) {
                lines.push((file.clone(), source.clone(), line, call));
            }
        }
    }
    if lines.is_empty() {
        return Err(Failure::Message("no `# bench:` lines to run (check the paths and --filter)".into()));
    }
    if let Some(path) = &args.plot {
        // Fail before a long run, not after it.
        let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(Failure::Message(format!("--plot {}: {} is not a directory", path.display(), dir.display())));
        }
    }
    let thread_counts: Vec<Option<usize>> = if args.threads.is_empty() {
        // One thread, then every thread the process would use, so the
        // default table shows the scaling.
        let all = kernjit::jit::pool::default_threads();
        if all > 1 {
            vec![Some(1), Some(all)]
        } else {
            vec![Some(1)]
        }
    } else {
        args.threads.iter().map(|&t| Some(t)).collect()
    };
    let mut configs: Vec<BenchOptions> = thread_counts
        .iter()
        .map(|&threads| BenchOptions {
            threads,
            interp: false,
            reps: args.reps,
            time: std::time::Duration::from_secs_f64(args.time),
            seed: args.seed,
        })
        .collect();
    if args.interp {
        configs.push(BenchOptions { interp: true, threads: Some(1), ..configs[0].clone() });
    }

    let progress = indicatif::ProgressBar::new((lines.len() * configs.len()) as u64);
    if args.json || !std::io::stderr().is_terminal() {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    } else if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}") {
        progress.set_style(style);
    }
    let mut rows: Vec<Row> = Vec::new();
    let mut failed = false;
    for (file, source, line, call) in &lines {
        let place = format!("{}:{line}", file.display());
        let mut first_median = None;
        for config in &configs {
            progress.set_message(format!("{place} {call}"));
            match bench::measure(file, source, call, config) {
                Ok(measurement) => {
                    let median = measurement.median().as_secs_f64();
                    let speedup = match first_median {
                        None => {
                            first_median = Some(median);
                            None
                        }
                        Some(first) => Some(first / median.max(1e-12)),
                    };
                    let row = Row {
                        place: place.clone(),
                        call: call.clone(),
                        engine: if config.interp { report::Engine::Interp } else { report::Engine::Jit },
                        measurement,
                        speedup,
                    };
                    if args.json {
                        write_stdout(&format!("{}\n", row.json()))?;
                    }
                    rows.push(row);
                }
                Err(error) => {
                    failed = true;
                    let message = match error {
                        BenchError::Call(message) => format!("error: {place}: {message}\n"),
                        BenchError::Kernel(error) => format!("{place}: {call}\n{}", error.render(color)),
                    };
                    progress.suspend(|| write_stderr(&message));
                    break;
                }
            }
            progress.inc(1);
        }
    }
    progress.finish_and_clear();
    if !args.json && !rows.is_empty() {
        write_stdout(&report::table(&rows, args.verbose))?;
    }
    if let (Some(path), false) = (&args.plot, rows.is_empty()) {
        let svg = bench::plot::svg(&rows).map_err(Failure::Message)?;
        std::fs::write(path, svg)
            .map_err(|error| Failure::Message(format!("cannot write the plot to {}: {error}", path.display())))?;
    }
    if failed {
        Err(Failure::Reported)
    } else {
        Ok(())
    }
}
