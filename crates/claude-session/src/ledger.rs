//! What outlives one CLI process: the conversation's session id and the cost totals.
//!
//! The CLI reports `total_cost_usd` (and `modelUsage`) *cumulatively per process*, and resets
//! them when the process restarts or the conversation is reset, while `usage` on a `result` is
//! already per turn. Summing the cumulative figures inflates costs; this ledger instead takes the
//! difference to the previous figure of the same process, and starts from zero again for a new
//! process, so totals continue across restarts without resetting or double counting.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// The cost and token figures of one turn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TurnCost {
    /// Dollars spent by this turn.
    pub cost_usd: f64,
    /// Input tokens (not counting cache reads and writes).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_input_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_creation_input_tokens: u64,
}

/// Running totals of a session, across all its processes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CostTotals {
    /// Turns that ended with a `result`.
    pub turns: u64,
    /// Dollars spent.
    pub cost_usd: f64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cache-read input tokens.
    pub cache_read_input_tokens: u64,
    /// Cache-creation input tokens.
    pub cache_creation_input_tokens: u64,
}

impl CostTotals {
    /// Adds another session's totals to these (for tree-wide sums).
    pub fn add(&mut self, other: &CostTotals) {
        self.turns += other.turns;
        self.cost_usd += other.cost_usd;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_input_tokens += other.cache_read_input_tokens;
        self.cache_creation_input_tokens += other.cache_creation_input_tokens;
    }

    fn add_turn(&mut self, turn: &TurnCost) {
        self.turns += 1;
        self.cost_usd += turn.cost_usd;
        self.input_tokens += turn.input_tokens;
        self.output_tokens += turn.output_tokens;
        self.cache_read_input_tokens += turn.cache_read_input_tokens;
        self.cache_creation_input_tokens += turn.cache_creation_input_tokens;
    }
}

#[derive(Debug, Default)]
struct LedgerState {
    session_id: Option<String>,
    totals: CostTotals,
    /// The CLI process the cumulative figure below belongs to.
    process: u64,
    /// The last cumulative `total_cost_usd` that process reported.
    process_cumulative_usd: f64,
}

/// Shared record of a session that survives its CLI processes (and its actor): the latest
/// session id and the cost totals. Clone it into the next instance's config to carry both over.
#[derive(Clone, Debug, Default)]
pub struct SessionLedger {
    inner: Arc<Mutex<LedgerState>>,
}

impl SessionLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// A ledger that starts from persisted figures (the hybrid pattern: state kept outside the
    /// runtime).
    pub fn restore(session_id: Option<String>, totals: CostTotals) -> Self {
        let ledger = Self::new();
        {
            let mut state = ledger.lock();
            state.session_id = session_id;
            state.totals = totals;
        }
        ledger
    }

    /// Replaces the figures with persisted ones (a ledger made before its record was read).
    pub fn restore_from(&self, session_id: Option<String>, totals: CostTotals) {
        let mut state = self.lock();
        state.session_id = session_id;
        state.totals = totals;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LedgerState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The newest session id seen (from `init`, `result` or `conversation_reset`).
    pub fn session_id(&self) -> Option<String> {
        self.lock().session_id.clone()
    }

    /// The running totals.
    pub fn totals(&self) -> CostTotals {
        self.lock().totals
    }

    /// Forgets the conversation: the next process starts a fresh one (used when the CLI no longer
    /// has the conversation this ledger names).
    pub fn forget_session_id(&self) {
        self.lock().session_id = None;
    }

    pub(crate) fn set_session_id(&self, id: &str) {
        let mut state = self.lock();
        if state.session_id.as_deref() != Some(id) {
            state.session_id = Some(id.to_owned());
        }
    }

    /// A new CLI process starts: its cumulative figures start from zero.
    pub(crate) fn begin_process(&self, process: u64) {
        let mut state = self.lock();
        state.process = process;
        state.process_cumulative_usd = 0.0;
    }

    /// The conversation was reset inside the process: the CLI's cumulative figures restart.
    pub(crate) fn rebase(&self) {
        self.lock().process_cumulative_usd = 0.0;
    }

    /// Records a turn's `result` and returns its per-turn figures.
    pub(crate) fn record_result(
        &self,
        process: u64,
        cumulative_usd: Option<f64>,
        usage: TurnCost,
    ) -> TurnCost {
        let mut state = self.lock();
        if state.process != process {
            state.process = process;
            state.process_cumulative_usd = 0.0;
        }
        let mut turn = usage;
        turn.cost_usd = match cumulative_usd {
            Some(total) if total >= state.process_cumulative_usd => {
                let delta = total - state.process_cumulative_usd;
                state.process_cumulative_usd = total;
                delta
            }
            // A smaller cumulative figure means the CLI restarted its count without telling us.
            Some(total) => {
                state.process_cumulative_usd = total;
                total
            }
            None => 0.0,
        };
        state.totals.add_turn(&turn);
        turn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_add_up_and_continue_across_processes() {
        let ledger = SessionLedger::new();
        ledger.begin_process(1);
        let a = ledger.record_result(
            1,
            Some(0.01),
            TurnCost {
                output_tokens: 5,
                ..Default::default()
            },
        );
        let b = ledger.record_result(1, Some(0.03), TurnCost::default());
        assert!((a.cost_usd - 0.01).abs() < 1e-12 && (b.cost_usd - 0.02).abs() < 1e-12);
        ledger.begin_process(2);
        let c = ledger.record_result(2, Some(0.005), TurnCost::default());
        assert!((c.cost_usd - 0.005).abs() < 1e-12);
        let t = ledger.totals();
        assert_eq!(t.turns, 3);
        assert_eq!(t.output_tokens, 5);
        assert!((t.cost_usd - 0.035).abs() < 1e-12);
    }
}
