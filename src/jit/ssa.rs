//! Locals that need no Cranelift variable.
//!
//! A local starts as zero and may be assigned anywhere, so in general the
//! lowering gives it a `cranelift_frontend` variable: a zero definition at
//! entry, and block parameters wherever control flow merges. Most locals of
//! a kernel are simpler: a parameter the body never assigns, or a name
//! assigned once (`y0 = int(math.floor(y))`) and read only by the
//! statements that follow that assignment in the same block. Such a local's
//! reads all see the value of the one assignment that dominates them, so
//! the lowering binds the local to that value directly: no zero definition,
//! no block parameters, less for Cranelift to remove again.

use crate::tir::{self, ExprKind, Stmt, StmtKind};

/// Per local of `function`: whether it is *fixed*, that is either a
/// parameter the body never assigns, or a local assigned by exactly one
/// `Assign` (and no loop header) whose every read comes in a statement
/// after that assignment in the same block (the assignment's own value
/// does not count as after).
pub fn fixed_locals(function: &tir::Function) -> Vec<bool> {
    let mut assignments = vec![0u32; function.locals.len()];
    for param in &function.params {
        assignments[param.0 as usize] += 1;
    }
    count_assignments(&function.body, &mut assignments);
    let mut walk = ReadWalk {
        single: assignments.iter().map(|&count| count == 1).collect(),
        active: vec![false; function.locals.len()],
        fixed: assignments.iter().map(|&count| count == 1).collect(),
    };
    for param in &function.params {
        walk.active[param.0 as usize] = true;
    }
    walk.block(&function.body);
    walk.fixed
}

fn count_assignments(block: &[Stmt], counts: &mut [u32]) {
    for stmt in block {
        match &stmt.kind {
            StmtKind::Assign { local, .. } => counts[local.0 as usize] += 1,
            StmtKind::If { then, orelse, .. } => {
                count_assignments(then, counts);
                count_assignments(orelse, counts);
            }
            StmtKind::While { body, .. } => count_assignments(body, counts),
            StmtKind::ForRange { var, body, .. } => {
                // A loop variable takes a value per trip: never fixed.
                counts[var.0 as usize] += 2;
                count_assignments(body, counts);
            }
            StmtKind::Store { .. } | StmtKind::Break | StmtKind::Continue | StmtKind::Return(_) | StmtKind::Expr(_) => {
            }
        }
    }
}

/// Visits the statements in order, keeping the singly assigned locals whose
/// assignment is behind the current statement in an enclosing block
/// `active`; a read of one that is not active unfixes it.
struct ReadWalk {
    single: Vec<bool>,
    active: Vec<bool>,
    fixed: Vec<bool>,
}

impl ReadWalk {
    fn block(&mut self, block: &[Stmt]) {
        let mut activated = Vec::new();
        for stmt in block {
            match &stmt.kind {
                StmtKind::Assign { local, value } => {
                    self.expr(value);
                    if self.single[local.0 as usize] {
                        self.active[local.0 as usize] = true;
                        activated.push(*local);
                    }
                }
                StmtKind::Store { array, indices, value, .. } => {
                    self.expr(array);
                    indices.iter().for_each(|index| self.expr(index));
                    self.expr(value);
                }
                StmtKind::If { cond, then, orelse } => {
                    self.expr(cond);
                    self.block(then);
                    self.block(orelse);
                }
                StmtKind::While { cond, body } => {
                    self.expr(cond);
                    self.block(body);
                }
                StmtKind::ForRange { start, stop, step, body, .. } => {
                    self.expr(start);
                    self.expr(stop);
                    self.expr(step);
                    self.block(body);
                }
                StmtKind::Return(Some(value)) | StmtKind::Expr(value) => self.expr(value),
                StmtKind::Return(None) | StmtKind::Break | StmtKind::Continue => {}
            }
        }
        for local in activated {
            self.active[local.0 as usize] = false;
        }
    }

    fn expr(&mut self, expr: &tir::Expr) {
        if let ExprKind::Local(local) = expr.kind {
            if !self.active[local.0 as usize] {
                self.fixed[local.0 as usize] = false;
            }
        }
        tir::for_each_operand(expr, |operand| self.expr(operand));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed_names(source: &str, kernel: &str, sig: &str) -> Vec<String> {
        let module = crate::Module::parse("t.kern", source.as_bytes()).expect("the test program parses");
        let types: Vec<crate::types::Type> =
            sig.split(';').map(|ty| crate::types::parse_type(ty).expect("a type")).collect();
        let program = module.specialise(kernel, &types).expect("the test program specialises");
        let function = program.function(program.entry);
        let fixed = fixed_locals(function);
        let mut names: Vec<String> = function
            .locals
            .iter()
            .zip(&fixed)
            .filter(|(_, &fixed)| fixed)
            .map(|(local, _)| local.name.clone())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn parameters_never_assigned_and_locals_read_after_their_one_assignment_are_fixed() {
        let source = "
def f(a, n, m):
    n = n + 1
    t = a[0] * 2.0
    s = 0.0
    for i in range(n):
        u = t + i
        s += u
        if i > 2:
            v = u * u
            s += v
    return s + m
";
        assert_eq!(fixed_names(source, "f", "f64[:]; i64; f64"), ["a", "m", "t", "u", "v"]);
    }

    #[test]
    fn reads_before_the_assignment_or_outside_its_block_unfix_a_local() {
        let source = "
def f(n):
    s = 0
    for i in range(n):
        if i > 1:
            s += x
        x = i * 2
        y = x + 1
    z = y
    w: i64 = w + 1
    return s + z + w
";
        // x is read on the next trip before it is assigned again, y after
        // its loop, w by its own assignment: only the parameter n and z are fixed.
        assert_eq!(fixed_names(source, "f", "i64"), ["n", "z"]);
    }
}
