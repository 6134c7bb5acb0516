//! Multi-dimensional complex FFTs on row-major grids (axis 0 fastest), one
//! axis at a time with rustfft: shared by the Eulerian Poisson solve and the
//! mesh density estimate.

use std::sync::Arc;

use rayon::prelude::*;
use rustfft::{Fft, FftPlanner, num_complex::Complex};

/// Forward and inverse plans for every axis of one grid shape.
pub struct GridFft {
    shape: Vec<usize>,
    forward: Vec<Arc<dyn Fft<f64>>>,
    inverse: Vec<Arc<dyn Fft<f64>>>,
}

impl GridFft {
    /// Plans for a grid of `shape[a]` points along axis `a`.
    pub fn new(shape: &[usize]) -> Self {
        let mut planner = FftPlanner::<f64>::new();
        GridFft {
            shape: shape.to_vec(),
            forward: shape.iter().map(|&n| planner.plan_fft_forward(n)).collect(),
            inverse: shape.iter().map(|&n| planner.plan_fft_inverse(n)).collect(),
        }
    }

    /// Points per axis.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// In place, unnormalized: X_k = sum_j x_j exp(-2 pi i j.k / n).
    /// `lines` is scratch space (grown to the grid's size, kept by the caller
    /// so repeated transforms allocate nothing).
    pub fn forward(&self, data: &mut [Complex<f64>], lines: &mut Vec<Complex<f64>>) {
        for a in 0..self.shape.len() {
            fft_axis(data, &self.shape, a, &self.forward[a], lines);
        }
    }

    /// In place, unnormalized (the forward then the inverse multiply by the
    /// number of cells).
    pub fn inverse(&self, data: &mut [Complex<f64>], lines: &mut Vec<Complex<f64>>) {
        for a in 0..self.shape.len() {
            fft_axis(data, &self.shape, a, &self.inverse[a], lines);
        }
    }

    /// The forward (or with `inverse` the inverse) transform along axis `a`
    /// only, of an array of `shape`, which may be a part of the grid (a
    /// slab, [`crate::util::slabs`]) but holds whole lines of axis a:
    /// `shape[a]` is the grid's.
    pub fn along(
        &self,
        data: &mut [Complex<f64>],
        shape: &[usize],
        a: usize,
        inverse: bool,
        lines: &mut Vec<Complex<f64>>,
    ) {
        assert_eq!(
            shape[a], self.shape[a],
            "a slab holds whole lines of its axes"
        );
        let plan = if inverse {
            &self.inverse[a]
        } else {
            &self.forward[a]
        };
        fft_axis(data, shape, a, plan, lines);
    }
}

/// Apply a 1D FFT along `axis` of a row-major (axis 0 fastest) array of
/// shape `shape`; `lines` is scratch space for the strided axes.
fn fft_axis(
    data: &mut [Complex<f64>],
    shape: &[usize],
    axis: usize,
    fft: &Arc<dyn Fft<f64>>,
    lines: &mut Vec<Complex<f64>>,
) {
    let n = shape[axis];
    let s: usize = shape[..axis].iter().product();
    // rustfft transforms every length-n chunk of a batch; ~4096 numbers a job.
    let per = (4096 / n).max(1) * n;
    if s == 1 {
        data.par_chunks_mut(per).for_each(|c| fft.process(c));
        return;
    }
    // Gather lines (o, i) -> lines[(o s + i) n + j] = data[o s n + j s + i], transform, scatter.
    lines.resize(data.len(), Complex::new(0.0, 0.0));
    {
        let src: &[Complex<f64>] = data;
        lines.par_chunks_mut(n).enumerate().for_each(|(l, line)| {
            let (o, i) = (l / s, l % s);
            let base = o * s * n + i;
            for (j, v) in line.iter_mut().enumerate() {
                *v = src[base + j * s];
            }
        });
    }
    lines.par_chunks_mut(per).for_each(|c| fft.process(c));
    let lines: &[Complex<f64>] = lines;
    data.par_chunks_mut(s * n)
        .enumerate()
        .for_each(|(o, block)| {
            for i in 0..s {
                let line = &lines[(o * s + i) * n..(o * s + i + 1) * n];
                for j in 0..n {
                    block[j * s + i] = line[j];
                }
            }
        });
}

/// The smallest n' >= n of the form 2^a 3^b (fast for rustfft).
pub fn fast_length(n: usize) -> usize {
    let mut best = n.next_power_of_two();
    let mut p3 = 1usize;
    while p3 < best {
        let mut m = p3;
        while m < n {
            m *= 2;
        }
        best = best.min(m);
        p3 *= 3;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_lengths() {
        let got: Vec<usize> = [1, 5, 7, 13, 100, 257, 1000].map(fast_length).to_vec();
        assert_eq!(got, vec![1, 6, 8, 16, 108, 288, 1024]);
    }

    /// Forward then inverse is n times the identity; a shifted delta
    /// transforms to a pure phase, on a 3D grid of unequal axes.
    #[test]
    fn round_trip_and_delta() {
        let shape = [6usize, 4, 9];
        let n: usize = shape.iter().product();
        let f = GridFft::new(&shape);
        let mut lines = Vec::new();
        let x: Vec<Complex<f64>> = (0..n)
            .map(|i| Complex::new((i as f64 * 0.37).sin(), (i as f64 * 0.11).cos()))
            .collect();
        let mut y = x.clone();
        f.forward(&mut y, &mut lines);
        f.inverse(&mut y, &mut lines);
        for (a, b) in x.iter().zip(&y) {
            assert!((a * n as f64 - b).norm() < 1e-12 * n as f64);
        }
        // delta at (1, 2, 3): X_k = exp(-2 pi i (k0/6 + 2 k1/4 + 3 k2/9)).
        let mut d = vec![Complex::new(0.0, 0.0); n];
        d[1 + 6 * (2 + 4 * 3)] = Complex::new(1.0, 0.0);
        f.forward(&mut d, &mut lines);
        for (idx, v) in d.iter().enumerate() {
            let (k0, k1, k2) = (idx % 6, (idx / 6) % 4, idx / 24);
            let phase = -2.0
                * std::f64::consts::PI
                * (k0 as f64 / 6.0 + 2.0 * k1 as f64 / 4.0 + 3.0 * k2 as f64 / 9.0);
            assert!((v - Complex::from_polar(1.0, phase)).norm() < 1e-12);
        }
    }
}
