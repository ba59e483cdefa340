//! The signature cache: compiled code per (kernel, argument types, array
//! layout classes).
//!
//! A hit takes only a shared read lock. On a miss the first caller inserts a
//! once-cell under a short write lock and compiles outside it; concurrent
//! callers of the same signature wait on that cell, so each signature is
//! compiled exactly once.
//!
//! A signature with contiguous layouts that is not cached yet uses the code
//! for the same types and [`Layout::Any`] if that is compiled already (made
//! by `Kernel::compile_for("f(f64[:])")`, say): it is valid for every layout,
//! and the caller asked for it ahead of time to avoid compiling later.
//!
//! The cache also counts lookups and compilations and sums the time spent in
//! each compilation phase, for `Module::stats`.

use super::engine::CompiledProgram;
use super::lower::CodegenPhases;
use crate::tir;
use crate::types::{Layout, Type};
use crate::Error;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

type Key = (String, Vec<Type>, Vec<Layout>);
type Slot = Arc<OnceLock<Result<Arc<CompiledProgram>, Error>>>;

#[derive(Default)]
pub struct Cache {
    entries: RwLock<HashMap<Key, Slot>>,
    lookups: AtomicU64,
    compiles: AtomicU64,
    infer_nanos: AtomicU64,
    lower_nanos: AtomicU64,
    cranelift_nanos: AtomicU64,
    finalize_nanos: AtomicU64,
}

/// What the cache has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Calls of [`Cache::get_or_compile`].
    pub lookups: u64,
    /// How many of them ran the compiler (the others found the signature,
    /// possibly waiting for another thread compiling it).
    pub compiles: u64,
    /// Time recorded with [`Cache::record_phases`], summed.
    pub infer: Duration,
    pub lower: Duration,
    pub cranelift: Duration,
    pub finalize: Duration,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.entries.read().map(|e| e.len()).unwrap_or(0);
        write!(f, "Cache({count} signatures)")
    }
}

impl Cache {
    /// The compiled program for `kernel` at `types` and `layouts` (one per
    /// argument), compiling it with `compile` if this is the first request.
    /// The program may have been compiled for [`Layout::Any`] in place of a
    /// contiguous layout (see the module documentation).
    pub fn get_or_compile(
        &self,
        kernel: &str,
        types: &[Type],
        layouts: &[Layout],
        compile: impl FnOnce() -> Result<(tir::Program, CompiledProgram), Error>,
    ) -> Result<Arc<CompiledProgram>, Error> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let key = (kernel.to_string(), types.to_vec(), layouts.to_vec());
        let existing = self.entries.read().ok().and_then(|entries| {
            entries.get(&key).cloned().or_else(|| {
                let any = (key.0.clone(), key.1.clone(), vec![Layout::Any; layouts.len()]);
                entries.get(&any).filter(|slot| matches!(slot.get(), Some(Ok(_)))).cloned()
            })
        });
        let slot = match existing {
            Some(slot) => slot,
            None => {
                let mut entries = match self.entries.write() {
                    Ok(entries) => entries,
                    Err(poisoned) => poisoned.into_inner(),
                };
                entries.entry(key).or_default().clone()
            }
        };
        slot.get_or_init(|| {
            self.compiles.fetch_add(1, Ordering::Relaxed);
            compile().map(|(_, compiled)| Arc::new(compiled))
        })
        .clone()
    }

    /// Counts a lookup its caller answered from its own memo of an earlier
    /// one (`Kernel::call`), so that hits count every call that found code.
    pub fn record_hit(&self) {
        self.lookups.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds the time one compilation spent in type inference and in each
    /// phase of code generation.
    pub fn record_phases(&self, infer: Duration, codegen: CodegenPhases) {
        let add = |counter: &AtomicU64, duration: Duration| {
            counter.fetch_add(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        };
        add(&self.infer_nanos, infer);
        add(&self.lower_nanos, codegen.lower);
        add(&self.cranelift_nanos, codegen.cranelift);
        add(&self.finalize_nanos, codegen.finalize);
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            lookups: self.lookups.load(Ordering::Relaxed),
            compiles: self.compiles.load(Ordering::Relaxed),
            infer: Duration::from_nanos(self.infer_nanos.load(Ordering::Relaxed)),
            lower: Duration::from_nanos(self.lower_nanos.load(Ordering::Relaxed)),
            cranelift: Duration::from_nanos(self.cranelift_nanos.load(Ordering::Relaxed)),
            finalize: Duration::from_nanos(self.finalize_nanos.load(Ordering::Relaxed)),
        }
    }
}
