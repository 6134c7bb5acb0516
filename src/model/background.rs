//! Fixed background charges C(x) (SPEC §8: doping, fixed charge), which
//! enter `-Laplace psi = sum_k z_k rho_k + C` and never move.
//!
//! A background has a total charge Q = int C (either sign) and a shape:
//!
//! - `Uniform`: C = Q / |B| on the box B = [lower, upper];
//! - `Gaussian`: C = Q N(mean, diag(std^2)), restricted to the domain's box
//!   and renormalized there (as a "gaussian" initial law is, SPEC §7);
//! - `Points`: fixed point charges Q_c at y_c (a particle file's rows), whose
//!   charges sum to Q.
//!
//! Its potential psi_C = G_box * C (G in free space) is what the particles
//! feel: the interaction energy gains lambda int q_m psi_C (SPEC §7), the
//! pair energy of C with itself being a constant left out. Closed forms of
//! psi_C in d = 1 are in [`super::interval`].

/// The shape of a background charge density.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BackgroundShape {
    /// Uniform on the box [lower, upper].
    Uniform {
        /// The lower corner.
        lower: Vec<f64>,
        /// The upper corner, above `lower` on every axis.
        upper: Vec<f64>,
    },
    /// A normal law of per-axis standard deviation `std`, restricted to the
    /// domain.
    Gaussian {
        /// The mean.
        mean: Vec<f64>,
        /// The standard deviation > 0 of each axis.
        std: Vec<f64>,
    },
    /// Fixed point charges.
    Points {
        /// Their positions (each of length d).
        positions: Vec<Vec<f64>>,
        /// Their charges, summing to the background's charge.
        charges: Vec<f64>,
    },
}

/// One fixed background charge (a `[[background]]` table).
#[derive(Debug, Clone, PartialEq)]
pub struct Background {
    /// Its name (the `species` of its rows in a particle file).
    pub name: String,
    /// Q = int C, either sign.
    pub charge: f64,
    /// Where the charge sits.
    pub shape: BackgroundShape,
}

impl Background {
    /// A uniform background of total charge `charge` on [lower, upper].
    pub fn uniform(name: &str, charge: f64, lower: Vec<f64>, upper: Vec<f64>) -> Self {
        Background {
            name: name.to_string(),
            charge,
            shape: BackgroundShape::Uniform { lower, upper },
        }
    }

    /// A Gaussian background of total charge `charge`.
    pub fn gaussian(name: &str, charge: f64, mean: Vec<f64>, std: Vec<f64>) -> Self {
        Background {
            name: name.to_string(),
            charge,
            shape: BackgroundShape::Gaussian { mean, std },
        }
    }
}
