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
//! With a capacity ([`Cache::with_capacity`], from `Options::cache_capacity`)
//! the cache keeps at most that many signatures: inserting one more evicts
//! the least recently used. Lookups stamp their entry with a tick of the
//! cache's clock by a relaxed atomic store under the shared lock (and
//! `Kernel::call`'s memo hits stamp the program, [`Cache::record_hit`]), so
//! a hit stays as cheap as without a capacity; only the insertion that
//! overflows the cache scans for the oldest stamp, under its write lock.
//! The cache holds programs by `Arc`: an evicted program stays valid while a
//! caller (a `Typed` handle, a `Kernel`'s memo, a call in flight) still holds
//! it, and its machine code is freed with the last holder.
//!
//! The cache also counts lookups, compilations and evictions and sums the
//! time spent in each compilation phase, for `Module::stats`.

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

/// One cached signature: its program (or compile error, or nothing yet while
/// a thread compiles it) and the tick of its last lookup (kept only when the
/// cache has a capacity).
struct Entry {
    slot: Slot,
    last_used: AtomicU64,
}

impl Entry {
    /// When the signature was last used: its last lookup, or a later call
    /// of its program recorded by [`Cache::record_hit`].
    fn last_used(&self) -> u64 {
        let looked_up = self.last_used.load(Ordering::Relaxed);
        match self.slot.get() {
            Some(Ok(program)) => looked_up.max(program.last_used()),
            _ => looked_up,
        }
    }
}

#[derive(Default)]
pub struct Cache {
    entries: RwLock<HashMap<Key, Entry>>,
    /// The most signatures kept (`None`: unbounded).
    capacity: Option<usize>,
    /// Lookups so far, and the clock that stamps entries when used.
    lookups: AtomicU64,
    compiles: AtomicU64,
    evictions: AtomicU64,
    infer_nanos: AtomicU64,
    lower_nanos: AtomicU64,
    cranelift_nanos: AtomicU64,
    finalize_nanos: AtomicU64,
}

/// What the cache has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Calls of [`Cache::get_or_compile`] and [`Cache::record_hit`].
    pub lookups: u64,
    /// How many of them ran the compiler (the others found the signature,
    /// possibly waiting for another thread compiling it).
    pub compiles: u64,
    /// Signatures evicted to stay within the capacity.
    pub evictions: u64,
    /// Signatures cached now (compiled, failed, or being compiled).
    pub cached: usize,
    /// Time recorded with [`Cache::record_phases`], summed.
    pub infer: Duration,
    pub lower: Duration,
    pub cranelift: Duration,
    pub finalize: Duration,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cache({} signatures)", self.cached())
    }
}

impl Cache {
    /// An empty cache keeping at most `capacity` signatures (`None`:
    /// unbounded; `Some(0)` keeps one, the signature asked for last).
    pub fn with_capacity(capacity: Option<usize>) -> Cache {
        Cache { capacity, ..Cache::default() }
    }

    /// The compiled program for `kernel` at `types` and `layouts` (one per
    /// argument), compiling it with `compile` if this is the first request
    /// (or the signature was evicted since). The program may have been
    /// compiled for [`Layout::Any`] in place of a contiguous layout (see the
    /// module documentation).
    pub fn get_or_compile(
        &self,
        kernel: &str,
        types: &[Type],
        layouts: &[Layout],
        compile: impl FnOnce() -> Result<(tir::Program, CompiledProgram), Error>,
    ) -> Result<Arc<CompiledProgram>, Error> {
        let tick = self.lookups.fetch_add(1, Ordering::Relaxed);
        let key = (kernel.to_string(), types.to_vec(), layouts.to_vec());
        let existing = self.entries.read().ok().and_then(|entries| {
            let entry = entries.get(&key).or_else(|| {
                let any = (key.0.clone(), key.1.clone(), vec![Layout::Any; layouts.len()]);
                entries.get(&any).filter(|entry| matches!(entry.slot.get(), Some(Ok(_))))
            })?;
            self.touch(entry, tick);
            Some(entry.slot.clone())
        });
        let slot = match existing {
            Some(slot) => slot,
            None => {
                let mut entries = match self.entries.write() {
                    Ok(entries) => entries,
                    Err(poisoned) => poisoned.into_inner(),
                };
                if !entries.contains_key(&key) {
                    self.make_room(&mut entries);
                }
                let entry = entries.entry(key).or_insert_with(|| Entry { slot: Slot::default(), last_used: 0.into() });
                self.touch(entry, tick);
                entry.slot.clone()
            }
        };
        slot.get_or_init(|| {
            self.compiles.fetch_add(1, Ordering::Relaxed);
            compile().map(|(_, compiled)| Arc::new(compiled))
        })
        .clone()
    }

    /// Stamps `entry` used at `tick` (only a bounded cache needs to know).
    fn touch(&self, entry: &Entry, tick: u64) {
        if self.capacity.is_some() {
            entry.last_used.store(tick, Ordering::Relaxed);
        }
    }

    /// Evicts least recently used entries until one more fits within the
    /// capacity. A thread still compiling an evicted signature finishes and
    /// hands the program to the callers waiting for it, uncached.
    fn make_room(&self, entries: &mut HashMap<Key, Entry>) {
        let Some(capacity) = self.capacity else { return };
        while entries.len() >= capacity.max(1) {
            let Some(oldest) = entries.iter().min_by_key(|(_, entry)| entry.last_used()).map(|(key, _)| key.clone())
            else {
                return;
            };
            entries.remove(&oldest);
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many signatures are cached now.
    fn cached(&self) -> usize {
        self.entries.read().map(|entries| entries.len()).unwrap_or(0)
    }

    /// Counts a lookup its caller answered from its own memo of an earlier
    /// one (`Kernel::call`), so that hits count every call that found code,
    /// and marks `program` used now (so that a bounded cache's eviction
    /// spares its signature).
    pub fn record_hit(&self, program: &CompiledProgram) {
        let tick = self.lookups.fetch_add(1, Ordering::Relaxed);
        if self.capacity.is_some() {
            program.mark_used(tick);
        }
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
            evictions: self.evictions.load(Ordering::Relaxed),
            cached: self.cached(),
            infer: Duration::from_nanos(self.infer_nanos.load(Ordering::Relaxed)),
            lower: Duration::from_nanos(self.lower_nanos.load(Ordering::Relaxed)),
            cranelift: Duration::from_nanos(self.cranelift_nanos.load(Ordering::Relaxed)),
            finalize: Duration::from_nanos(self.finalize_nanos.load(Ordering::Relaxed)),
        }
    }
}
