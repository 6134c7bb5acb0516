//! `V`: a small fixed-width vector of `LANES` f64 with element-wise operators.
//!
//! Each operator is a loop over the lanes that LLVM turns into one (AVX-512) or two
//! (AVX2) vector instructions; writing the kernels with `V` keeps LLVM from scalarizing
//! the accumulators.

use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// Number of lanes (targets per block, or sources per M2L batch).
pub const LANES: usize = 8;

/// `LANES` f64 lanes with element-wise arithmetic.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, align(64))]
pub struct V(pub [f64; LANES]);

impl V {
    /// All lanes 0.
    pub const ZERO: V = V([0.0; LANES]);

    /// All lanes `x`.
    #[inline(always)]
    pub fn splat(x: f64) -> V {
        V([x; LANES])
    }

    /// Lane `l` is `f(l)`.
    #[inline(always)]
    pub fn from_fn(f: impl FnMut(usize) -> f64) -> V {
        V(std::array::from_fn(f))
    }

    /// `f` applied to each lane.
    #[inline(always)]
    pub fn map(self, f: impl Fn(f64) -> f64) -> V {
        let mut r = self;
        for l in 0..LANES {
            r.0[l] = f(self.0[l]);
        }
        r
    }

    /// Lane-wise square root.
    #[inline(always)]
    pub fn sqrt(self) -> V {
        self.map(f64::sqrt)
    }

    /// Lane-wise absolute value.
    #[inline(always)]
    pub fn abs(self) -> V {
        self.map(f64::abs)
    }

    /// `sign(x)` with `sign(0) = 0`.
    #[inline(always)]
    pub fn signum0(self) -> V {
        self.map(|x| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        })
    }

    /// Natural logarithm of positive normal lanes (see [`crate::model::green`]).
    #[inline(always)]
    pub fn ln(self) -> V {
        self.map(crate::util::math::ln)
    }

    /// Sum of the lanes, in lane order (deterministic).
    #[inline(always)]
    pub fn sum(self) -> f64 {
        let mut s = 0.0;
        for l in 0..LANES {
            s += self.0[l];
        }
        s
    }
}

macro_rules! binop {
    ($tr:ident, $f:ident, $op:tt, $tra:ident, $fa:ident) => {
        impl $tr for V {
            type Output = V;
            #[inline(always)]
            fn $f(self, o: V) -> V {
                let mut r = self;
                for l in 0..LANES {
                    r.0[l] = self.0[l] $op o.0[l];
                }
                r
            }
        }
        impl $tra for V {
            #[inline(always)]
            fn $fa(&mut self, o: V) {
                for l in 0..LANES {
                    self.0[l] = self.0[l] $op o.0[l];
                }
            }
        }
    };
}
binop!(Add, add, +, AddAssign, add_assign);
binop!(Sub, sub, -, SubAssign, sub_assign);
binop!(Mul, mul, *, MulAssign, mul_assign);
binop!(Div, div, /, DivAssign, div_assign);

/// `LANES` single-precision lanes (one 256-bit register): the single-precision part of
/// the multipole tree's M2L contraction (`coupling::tree`).
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, align(32))]
pub struct V32(pub [f32; LANES]);

impl V32 {
    /// All lanes 0.
    pub const ZERO: V32 = V32([0.0; LANES]);

    /// Lane-wise rounding to the nearest `f32`.
    #[inline(always)]
    pub fn from_v(v: V) -> V32 {
        let mut r = V32::ZERO;
        for l in 0..LANES {
            r.0[l] = v.0[l] as f32;
        }
        r
    }

    /// Lane-wise exact conversion to `f64`.
    #[inline(always)]
    pub fn widen(self) -> V {
        let mut r = V::ZERO;
        for l in 0..LANES {
            r.0[l] = self.0[l] as f64;
        }
        r
    }
}

impl Add for V32 {
    type Output = V32;
    #[inline(always)]
    fn add(self, o: V32) -> V32 {
        let mut r = self;
        for l in 0..LANES {
            r.0[l] = self.0[l] + o.0[l];
        }
        r
    }
}

impl Mul for V32 {
    type Output = V32;
    #[inline(always)]
    fn mul(self, o: V32) -> V32 {
        let mut r = self;
        for l in 0..LANES {
            r.0[l] = self.0[l] * o.0[l];
        }
        r
    }
}

impl Neg for V {
    type Output = V;
    #[inline(always)]
    fn neg(self) -> V {
        self.map(|x| -x)
    }
}
