//! Generated code never executes a trapping instruction: there is no `trap`,
//! no conditional trap, no non-saturating float-to-int conversion, and every
//! signed division's divisor goes through the `select` that replaces -1
//! (the MIN / -1 guard); zero divisors branch to an error exit before the
//! division. Checked on the Cranelift IR of every program that the golden
//! tests and the kernels library run, with bounds checks on and off.

use kernjit::jit::lower::{lower_with_listings, LowerOptions};
use kernjit::{cli_args, Layout, Module, Type};
use std::collections::HashMap;

/// Problems in the CLIF text of a program (functions are separated by
/// `function` headers; value names are local to a function).
fn check_clif(clif: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut function = String::new();
    for line in clif.lines() {
        if line.starts_with("function ") && !function.is_empty() {
            problems.extend(check_function(&function));
            function.clear();
        }
        function.push_str(line);
        function.push('\n');
    }
    problems.extend(check_function(&function));
    problems
}

fn check_function(clif: &str) -> Vec<String> {
    let mut problems = Vec::new();
    // Which opcode defines each value (`v12 = select v1, v2, v3`).
    let mut definitions: HashMap<&str, &str> = HashMap::new();
    for line in clif.lines() {
        let line = line.split(';').next().unwrap_or("");
        if let Some((value, rest)) = line.trim().split_once(" = ") {
            definitions.insert(value.trim(), rest.split_whitespace().next().unwrap_or(""));
        }
    }
    for line in clif.lines() {
        // Drop the constant annotations Cranelift appends (`; v4 = 1`).
        let line = line.split(';').next().unwrap_or("").trim();
        let instruction = line.split_once(" = ").map(|(_, rest)| rest).unwrap_or(line);
        let opcode = instruction.split_whitespace().next().unwrap_or("");
        let opcode = opcode.split('.').next().unwrap_or(opcode);
        if matches!(opcode, "trap" | "trapz" | "trapnz" | "resumable_trap" | "fcvt_to_sint" | "fcvt_to_uint") {
            problems.push(format!("trapping instruction: {line}"));
        }
        if matches!(opcode, "sdiv" | "srem") {
            let divisor = instruction.split(',').nth(1).map(str::trim).unwrap_or("");
            if definitions.get(divisor) != Some(&"select") {
                problems.push(format!("signed division without the -1 guard: {line}"));
            }
        }
    }
    problems
}

#[test]
fn generated_code_has_no_trapping_instructions() {
    let files = crate::corpus::all_programs();
    let mut checked = 0;
    let mut divisions = 0;
    let mut problems = Vec::new();
    for path in &files {
        let source = std::fs::read_to_string(path).unwrap();
        let Ok(module) = Module::parse("t.kern", source.as_bytes()) else { continue };
        for (_, call) in cli_args::run_lines(&source) {
            let Ok((kernel, raw)) = cli_args::parse_call(&call) else { continue };
            let Ok(types) = raw
                .iter()
                .map(|a| cli_args::parse_arg(a).and_then(|spec| spec.ty(path.parent().unwrap())))
                .collect::<Result<Vec<_>, _>>()
            else {
                continue;
            };
            let Ok(program) = module.specialise(&kernel, &types) else { continue };
            let contiguous: Vec<Layout> =
                types.iter().map(|ty| if matches!(ty, Type::Array(_)) { Layout::C } else { Layout::Any }).collect();
            for (boundscheck, layouts) in [(true, vec![]), (false, vec![]), (true, contiguous)] {
                let options = LowerOptions { boundscheck, verify: true, layouts, ..LowerOptions::default() };
                let lowered =
                    lower_with_listings(&program, &options, true, false).expect("every checked program compiles");
                let (clif, _) = lowered.into_listings();
                let clif = clif.unwrap_or_default();
                divisions += clif.matches("= sdiv").count() + clif.matches("= srem").count();
                problems.extend(check_clif(&clif).into_iter().map(|p| format!("{}: {call}: {p}", path.display())));
                checked += 1;
            }
        }
    }
    assert!(checked > 300, "only {checked} programs checked");
    assert!(divisions > 0, "the corpus exercises signed integer division");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_catches_an_unguarded_division() {
    let clif = "block0(v0: i64, v1: i64):\n    v2 = sdiv v0, v1\n    v3 = fcvt_to_sint.i64 v0\n";
    assert_eq!(check_clif(clif).len(), 2);
}
