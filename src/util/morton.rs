//! Morton (Z-curve) order: points sorted by the bit-interleaved coordinates
//! of their cell in a grid over their bounding box, so that points close in
//! space are mostly close in the order.
//!
//! The grid cuts the bounding box's longest side into 2^b cells (b = 32 in
//! 1D and 2D, 21 in 3D; fewer with [`sorted_keys_at`]), the same cell size
//! on every axis, so that the cells of a key prefix are squares or cubes. Ties (points in one cell) are
//! broken by index, so the order is a function of the positions alone:
//! the same on every thread count and on every member of a team that holds
//! the same positions. The neighbour lists sort their slots so
//! ([`crate::density::neighbours`]), and so does a JKO step's vector order
//! ([`crate::stepper`]).

use rayon::prelude::*;

use super::parallel::bounding_box;

/// The `(key, index)` of every point of `x`, into `keys`, sorted by key,
/// ties by index (module docs). Returns the side of one grid cell (0 when
/// every point is the same).
pub fn sorted_keys<const D: usize>(x: &[[f64; D]], keys: &mut Vec<(u64, u32)>) -> f64 {
    sorted_keys_at(x, (64 / D as u32).min(32), keys)
}

/// [`sorted_keys`] on a coarser grid, of 2^`bits` cells along the longest
/// side (`bits` at most `64 / D`, and 32): a shorter key is sorted in fewer
/// passes, for an order that need only keep neighbours in space close.
pub fn sorted_keys_at<const D: usize>(
    x: &[[f64; D]],
    bits: u32,
    keys: &mut Vec<(u64, u32)>,
) -> f64 {
    Frame::of(x).sorted_keys(x, bits, keys)
}

/// The cube a Morton grid covers: its lower corner and side, the longest
/// side of a bounding box. Orders of different point sets keyed in one
/// frame follow one curve: the order of a subset is the order of the whole
/// restricted to it (up to points sharing a cell of the coarser grid).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame<const D: usize> {
    /// The lowest corner.
    pub lower: [f64; D],
    /// The side (0 when every point is the same).
    pub width: f64,
}

impl<const D: usize> Frame<D> {
    /// The frame of the bounding box of `x`.
    pub fn of(x: &[[f64; D]]) -> Self {
        let (lower, upper) = bounding_box(x);
        let width = (0..D).map(|a| upper[a] - lower[a]).fold(0.0, f64::max);
        Frame { lower, width }
    }

    /// Whether every point of `x` lies in the frame's cube (false for a
    /// point that is not finite).
    pub fn holds(&self, x: &[[f64; D]]) -> bool {
        let (lo, w) = (self.lower, self.width);
        x.par_iter()
            .all(|p| (0..D).all(|a| p[a] >= lo[a] && p[a] - lo[a] <= w))
    }

    /// The `(key, index)` of every point of `x` on the grid of 2^`bits`
    /// cells along the frame's side, into `keys`, sorted by key, ties by
    /// index; a point outside the frame takes the key of the nearest cell.
    /// Returns the side of one cell (0 for a frame of no width).
    pub fn sorted_keys(&self, x: &[[f64; D]], bits: u32, keys: &mut Vec<(u64, u32)>) -> f64 {
        assert!(
            bits >= 1 && bits <= (64 / D as u32).min(32),
            "{bits} bits per axis in {D}D"
        );
        let lo = self.lower;
        let cells = ((1u64 << bits) - 1) as f64;
        let scale = if self.width > 0.0 {
            cells / self.width
        } else {
            0.0
        };
        keys.clear();
        keys.par_extend(x.par_iter().enumerate().map(|(i, p)| {
            let cell: [u64; D] =
                std::array::from_fn(|a| (((p[a] - lo[a]) * scale) as u64).min(cells as u64));
            (interleave(cell), i as u32)
        }));
        radix_sort(keys);
        if scale > 0.0 { 1.0 / scale } else { 0.0 }
    }
}

/// Bit-interleaves the coordinates, each at most `64 / D` bits (32 in 1D):
/// bit b of axis a goes to bit D b + (D - 1 - a), so axis 0 is the most
/// significant of each group, as in the multipole tree's octree
/// ([`crate::coupling::tree`]): the Z-curve of both is the same, and so
/// are the regions a cut of either order makes.
pub fn interleave<const D: usize>(cell: [u64; D]) -> u64 {
    cell.iter()
        .enumerate()
        .fold(0, |key, (a, &c)| key | (spread::<D>(c) << (D - 1 - a)))
}

/// The bits of `c` moved apart to every D-th place (the classic
/// shift-and-mask "magic numbers"): bit b goes to bit D b.
#[inline(always)]
fn spread<const D: usize>(c: u64) -> u64 {
    match D {
        1 => c,
        2 => {
            let mut x = c & 0xffff_ffff;
            x = (x | x << 16) & 0x0000_ffff_0000_ffff;
            x = (x | x << 8) & 0x00ff_00ff_00ff_00ff;
            x = (x | x << 4) & 0x0f0f_0f0f_0f0f_0f0f;
            x = (x | x << 2) & 0x3333_3333_3333_3333;
            (x | x << 1) & 0x5555_5555_5555_5555
        }
        _ => {
            let mut x = c & 0x1f_ffff;
            x = (x | x << 32) & 0x001f_0000_0000_ffff;
            x = (x | x << 16) & 0x001f_0000_ff00_00ff;
            x = (x | x << 8) & 0x100f_00f0_0f00_f00f;
            x = (x | x << 4) & 0x10c3_0c30_c30c_30c3;
            (x | x << 2) & 0x1249_2492_4924_9249
        }
    }
}

/// Sorts `(key, index)` pairs by key, ties by index, for pairs that arrive in
/// index order: a stable least-significant-digit radix sort on the key's
/// bytes (bytes equal in every key skipped), O(N) against the comparison
/// sort's O(N log N), with a second buffer of its own (freed on return).
pub fn radix_sort(keys: &mut Vec<(u64, u32)>) {
    let (all_or, all_and) = keys
        .iter()
        .fold((0u64, u64::MAX), |(o, a), &(k, _)| (o | k, a & k));
    let varying = all_or & !all_and;
    let scratch = &mut vec![(0, 0); keys.len()];
    for byte in 0..8 {
        let shift = 8 * byte;
        if (varying >> shift) & 0xff == 0 {
            continue;
        }
        let mut start = [0usize; 256];
        for &(k, _) in keys.iter() {
            start[((k >> shift) & 0xff) as usize] += 1;
        }
        let mut total = 0;
        for s in start.iter_mut() {
            (*s, total) = (total, total + *s);
        }
        for &e in keys.iter() {
            let b = ((e.0 >> shift) & 0xff) as usize;
            scratch[start[b]] = e;
            start[b] += 1;
        }
        std::mem::swap(keys, scratch);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Marsaglia's xorshift64 from `state` (nonzero): test data, no crate.
    pub(crate) fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    /// The magic-number interleave against the bit-by-bit definition, and the
    /// radix sort against the comparison sort (ties by index).
    #[test]
    fn morton_keys_and_their_sort() {
        fn by_bits<const D: usize>(cell: [u64; D]) -> u64 {
            let bits = (64 / D as u32).min(32);
            let mut key = 0;
            for b in 0..bits {
                for (a, c) in cell.iter().enumerate() {
                    key |= ((c >> b) & 1) << (b as usize * D + D - 1 - a);
                }
            }
            key
        }
        fn check<const D: usize>() {
            let top = (1u64 << (64 / D as u32).min(32)) - 1;
            let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
            for _ in 0..10_000 {
                let cell: [u64; D] = std::array::from_fn(|_| next() & top);
                assert_eq!(interleave(cell), by_bits(cell), "{cell:?}");
            }
            assert_eq!(interleave([top; D]), by_bits([top; D]));
            // Few distinct keys (many ties), spread over all eight bytes.
            let mut keys: Vec<(u64, u32)> = (0..5000)
                .map(|i| (next() % 97 * 0x0101_0101_0101_0101 % (1 << 63), i))
                .collect();
            let mut want = keys.clone();
            want.sort_unstable();
            radix_sort(&mut keys);
            assert_eq!(keys, want);
        }
        check::<1>();
        check::<2>();
        check::<3>();
    }

    /// The sorted keys are the comparison sort of the keys computed point by
    /// point, and points close in space share key prefixes: the four
    /// quadrants of a square come one after another.
    #[test]
    fn points_sort_by_their_cells() {
        let mut next = xorshift(0x1234_5678_9abc_def1);
        let x: Vec<[f64; 2]> = (0..4000)
            .map(|_| std::array::from_fn(|_| (next() >> 11) as f64 / (1u64 << 53) as f64))
            .collect();
        let mut keys = Vec::new();
        let side = sorted_keys(&x, &mut keys);
        let (lo, hi) = bounding_box(&x);
        let width = (hi[0] - lo[0]).max(hi[1] - lo[1]);
        assert!((side * ((1u64 << 32) - 1) as f64 / width - 1.0).abs() < 1e-12);
        // The keys computed point by point on cells of side `side`, sorted.
        let by_point = |side: f64| {
            let mut want: Vec<(u64, u32)> = x
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let c = |a: usize| ((p[a] - lo[a]) / side) as u64;
                    (interleave([c(0), c(1)]), i as u32)
                })
                .collect();
            want.sort_unstable();
            want
        };
        assert_eq!(keys, by_point(side));
        // Axis 0 is the most significant bit: the quadrants come in Z
        // order, the halves of axis 0 first.
        let quadrant = |i: u32| {
            let p = x[i as usize];
            let half = |a: usize| (p[a] - lo[a] >= 0.5 * width) as usize;
            2 * half(0) + half(1)
        };
        let seen: Vec<usize> = keys.iter().map(|&(_, i)| quadrant(i)).collect();
        assert!(seen.is_sorted(), "the quadrants are not consecutive");
        assert_eq!(sorted_keys(&[[1.0, 2.0]; 3], &mut keys), 0.0);
        assert_eq!(keys, vec![(0, 0), (0, 1), (0, 2)]);
        // A coarser grid: cells of side width / (2^4 - 1), keys of 8 bits.
        let mut coarse = Vec::new();
        let side = sorted_keys_at(&x, 4, &mut coarse);
        assert!((side * 15.0 / width - 1.0).abs() < 1e-12);
        assert_eq!(coarse, by_point(side));
        assert!(coarse.iter().all(|&(k, _)| k < 1 << 8));
    }
}
