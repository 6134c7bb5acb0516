//! The multipoles a member holds: `nterms` numbers per cell, each at the
//! cell's slot.
//!
//! One process holds every cell's, at the cell's own index (the slot is
//! the cell). A member of a team dividing the evaluation (`divided`) holds
//! only those it computes or reads: its range of cells (its frontier
//! subtrees, computed by its upward pass) in one block at the front, in
//! cell order, so the upward pass writes each subtree's cells contiguously
//! as one process does; then the top cells (every member computes them);
//! then the multipoles received from the other members (its locally
//! essential ones). At P members a member holds about 1/P of the cells plus
//! the top and its locally essential multipoles, instead of all of them
//! (nterms x 8 bytes per cell: 680 numbers in 3D at accuracy 1e-6, ~90 bytes
//! per particle).

use std::ops::Range;

/// Marks a cell this member holds no multipole of.
const NONE: u32 = u32::MAX;

#[derive(Debug, Default)]
pub(super) struct Multipoles {
    nterms: usize,
    /// Per cell: its slot, or [`NONE`].
    slot: Vec<u32>,
    /// `nterms` numbers per slot.
    data: Vec<f64>,
    /// The cells of the block at the front (slots `0..own.len()`).
    own: Range<usize>,
}

impl Multipoles {
    /// Every cell of `ncells`, at its own index (one process).
    pub fn whole(&mut self, ncells: usize, nterms: usize) {
        self.arrange(ncells, nterms, 0..ncells);
    }

    /// Holds the cells `own` only, in a block at the front in cell order.
    /// Values are left as they were (stale or zero): the caller writes
    /// every slot it reads.
    pub fn arrange(&mut self, ncells: usize, nterms: usize, own: Range<usize>) {
        self.nterms = nterms;
        self.slot.clear();
        self.slot.resize(ncells, NONE);
        for (k, c) in own.clone().enumerate() {
            self.slot[c] = k as u32;
        }
        self.data.resize(own.len() * nterms, 0.0);
        self.own = own;
    }

    /// Holds also each cell of `others` (not held yet, no repeats), in the
    /// order given, after those held.
    pub fn hold(&mut self, others: impl Iterator<Item = u32>) {
        let mut next = self.held();
        for c in others {
            debug_assert!(self.slot[c as usize] == NONE, "cell {c} held twice");
            self.slot[c as usize] = next as u32;
            next += 1;
        }
        self.data.resize(next * self.nterms, 0.0);
    }

    /// The multipole of cell `c` (which this member holds).
    #[inline(always)]
    pub fn get(&self, c: usize) -> &[f64] {
        let at = self.offset(c);
        &self.data[at..at + self.nterms]
    }

    /// Where cell `c`'s multipole starts in [`Self::data_mut`].
    #[inline(always)]
    pub fn offset(&self, c: usize) -> usize {
        debug_assert!(self.slot[c] != NONE, "cell {c} is not held");
        self.slot[c] as usize * self.nterms
    }

    /// The block of the cells of `own` (`arrange`), in cell order.
    pub fn own_block_mut(&mut self) -> (Range<usize>, &mut [f64]) {
        let len = self.own.len() * self.nterms;
        (self.own.clone(), &mut self.data[..len])
    }

    /// Every slot's numbers, and where each cell's start in them.
    pub fn data_mut(&mut self) -> (impl Fn(u32) -> usize + '_, &mut [f64]) {
        let (slot, nterms) = (&self.slot, self.nterms);
        (
            move |c: u32| slot[c as usize] as usize * nterms,
            &mut self.data[..],
        )
    }

    /// The number of multipoles held.
    pub fn held(&self) -> usize {
        self.data.len() / self.nterms.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slots are the cells for one process; a member's block is its range
    /// in cell order and the others follow in the order given; every held
    /// cell reads back what was written at its offset.
    #[test]
    fn cells_read_back_from_their_slots() {
        let mut m = Multipoles::default();
        m.whole(5, 3);
        assert_eq!(
            (0..5).map(|c| m.offset(c)).collect::<Vec<_>>(),
            [0, 3, 6, 9, 12]
        );
        m.arrange(10, 2, 4..7);
        m.hold([9, 0].into_iter());
        m.hold([2].into_iter());
        assert_eq!(m.held(), 6);
        let (own, block) = m.own_block_mut();
        assert_eq!((own, block.len()), (4..7, 6));
        for (c, at) in [(4, 0), (5, 2), (6, 4), (9, 6), (0, 8), (2, 10)] {
            assert_eq!(m.offset(c), at);
            let (offset, data) = m.data_mut();
            assert_eq!(offset(c as u32), at);
            data[at..at + 2].copy_from_slice(&[c as f64, -(c as f64)]);
        }
        for c in [0, 2, 4, 5, 6, 9] {
            assert_eq!(m.get(c), [c as f64, -(c as f64)]);
        }
    }
}
