//! The signature cache: compiled code per (kernel, argument types).
//!
//! A hit takes only a shared read lock. On a miss the first caller inserts a
//! once-cell under a short write lock and compiles outside it; concurrent
//! callers of the same signature wait on that cell, so each signature is
//! compiled exactly once.

use super::engine::CompiledProgram;
use crate::tir;
use crate::types::Type;
use crate::Error;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

type Key = (String, Vec<Type>);
type Slot = Arc<OnceLock<Result<Arc<CompiledProgram>, Error>>>;

#[derive(Default)]
pub struct Cache {
    entries: RwLock<HashMap<Key, Slot>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.entries.read().map(|e| e.len()).unwrap_or(0);
        write!(f, "Cache({count} signatures)")
    }
}

impl Cache {
    /// The compiled program for `kernel` at `types`, compiling it with
    /// `compile` if this is the first request.
    pub fn get_or_compile(
        &self,
        kernel: &str,
        types: &[Type],
        compile: impl FnOnce() -> Result<(tir::Program, CompiledProgram), Error>,
    ) -> Result<Arc<CompiledProgram>, Error> {
        let key = (kernel.to_string(), types.to_vec());
        let existing = self.entries.read().ok().and_then(|entries| entries.get(&key).cloned());
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
        slot.get_or_init(|| compile().map(|(_, compiled)| Arc::new(compiled))).clone()
    }
}
