//! Where the species live (SPEC §7): free space R^d, or a box
//! [lower, upper] whose 2d walls are no-flux for every species and carry a
//! condition on psi each:
//!
//! - insulating, `d psi / d nu = surface_charge` (nu the outward normal;
//!   0 for the seed's uncharged wall), a Neumann condition;
//! - an electrode, `psi = potential`, a Dirichlet condition.
//!
//! Sign convention: `-Laplace psi = q` in the box, so by the divergence
//! theorem the box is neutral, with no electrode, when
//! `int q + sum_walls surface_charge * area = 0` (`net_charge` below). A
//! wall's area is the product of the box's lengths along the other axes
//! (1 in d = 1).

/// Which end of an axis a wall closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The wall at `lower[axis]` (outward normal -e_axis).
    Lower,
    /// The wall at `upper[axis]` (outward normal +e_axis).
    Upper,
}

/// The condition a wall puts on psi (every wall is no-flux for the species).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WallCondition {
    /// `d psi / d nu = surface_charge` (Neumann): charge per unit area.
    Insulating {
        /// The wall's charge per unit area (0: the seed's uncharged wall).
        surface_charge: f64,
    },
    /// `psi = potential` on the wall (Dirichlet).
    Electrode {
        /// The wall's potential.
        potential: f64,
    },
}

impl WallCondition {
    /// An uncharged insulating wall, the default.
    pub const INSULATING: WallCondition = WallCondition::Insulating {
        surface_charge: 0.0,
    };

    /// Whether psi is prescribed on this wall.
    pub fn is_electrode(&self) -> bool {
        matches!(self, WallCondition::Electrode { .. })
    }
}

/// A box [lower, upper] in R^d with a condition on each of its 2d walls.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxDomain {
    /// The lower corner (length d).
    pub lower: Vec<f64>,
    /// The upper corner, above `lower` on every axis.
    pub upper: Vec<f64>,
    /// The walls' conditions, `walls[axis][0]` at the lower side and
    /// `walls[axis][1]` at the upper one.
    pub walls: Vec<[WallCondition; 2]>,
}

impl BoxDomain {
    /// A box with insulating uncharged walls (the seed's bounded domain).
    pub fn insulating(lower: Vec<f64>, upper: Vec<f64>) -> Self {
        let walls = vec![[WallCondition::INSULATING; 2]; lower.len()];
        BoxDomain {
            lower,
            upper,
            walls,
        }
    }

    /// The same box with the wall at (`axis`, `side`) set to `condition`.
    pub fn with_wall(mut self, axis: usize, side: Side, condition: WallCondition) -> Self {
        self.walls[axis][side as usize] = condition;
        self
    }

    /// The dimension d.
    pub fn dimension(&self) -> usize {
        self.lower.len()
    }

    /// The wall at (`axis`, `side`).
    pub fn wall(&self, axis: usize, side: Side) -> WallCondition {
        self.walls[axis][side as usize]
    }

    /// upper - lower along `axis`.
    pub fn length(&self, axis: usize) -> f64 {
        self.upper[axis] - self.lower[axis]
    }

    /// The box's volume (its length in d = 1).
    pub fn volume(&self) -> f64 {
        (0..self.dimension()).map(|a| self.length(a)).product()
    }

    /// The area of a wall normal to `axis` (1 in d = 1).
    pub fn wall_area(&self, axis: usize) -> f64 {
        (0..self.dimension())
            .filter(|&b| b != axis)
            .map(|b| self.length(b))
            .product()
    }

    /// Whether any wall is an electrode (then psi is fixed by the walls and
    /// the box need not be neutral).
    pub fn has_electrode(&self) -> bool {
        self.walls.iter().flatten().any(|w| w.is_electrode())
    }

    /// Whether a wall is a source of potential: a charged insulating wall
    /// or an electrode at a potential other than 0 (a grounded electrode
    /// and an uncharged wall are homogeneous conditions, which the box's
    /// Green's function carries).
    pub fn walls_are_sources(&self) -> bool {
        self.walls.iter().flatten().any(|w| match *w {
            WallCondition::Insulating { surface_charge } => surface_charge != 0.0,
            WallCondition::Electrode { potential } => potential != 0.0,
        })
    }

    /// sum over the insulating walls of surface_charge x area.
    pub fn wall_charge(&self) -> f64 {
        let mut q = 0.0;
        for (a, pair) in self.walls.iter().enumerate() {
            for w in pair {
                if let WallCondition::Insulating { surface_charge } = w {
                    q += surface_charge * self.wall_area(a);
                }
            }
        }
        q
    }

    /// Whether `x` lies in the closed box.
    pub fn contains(&self, x: &[f64]) -> bool {
        x.iter()
            .enumerate()
            .all(|(a, &v)| self.lower[a] <= v && v <= self.upper[a])
    }
}

/// Free space or a box (SPEC §7, `[domain]`).
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub enum Domain {
    /// R^d, the default: psi = G * q with the Newtonian kernel.
    #[default]
    Free,
    /// A box with no-flux walls and their conditions on psi.
    Box(BoxDomain),
}

impl Domain {
    /// The box, if the domain is one.
    pub fn as_box(&self) -> Option<&BoxDomain> {
        match self {
            Domain::Free => None,
            Domain::Box(b) => Some(b),
        }
    }

    /// Whether `x` lies in the domain.
    pub fn contains(&self, x: &[f64]) -> bool {
        self.as_box().is_none_or(|b| b.contains(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_volumes_and_wall_charge() {
        let b = BoxDomain::insulating(vec![0.0, -1.0, 0.0], vec![4.0, 1.0, 0.5])
            .with_wall(
                1,
                Side::Lower,
                WallCondition::Insulating {
                    surface_charge: -0.25,
                },
            )
            .with_wall(0, Side::Upper, WallCondition::Electrode { potential: 1.0 });
        assert_eq!(b.volume(), 4.0);
        assert_eq!(b.wall_area(0), 1.0);
        assert_eq!(b.wall_area(1), 2.0);
        assert_eq!(b.wall_charge(), -0.5);
        assert!(b.has_electrode());
        assert!(b.contains(&[4.0, 1.0, 0.0]) && !b.contains(&[4.0 + 1e-12, 0.0, 0.0]));
        let one = BoxDomain::insulating(vec![-1.0], vec![2.0]);
        assert_eq!(one.wall_area(0), 1.0);
        assert!(!one.has_electrode());
    }

    /// Only a charged wall or an electrode away from 0 is a source.
    #[test]
    fn walls_that_are_sources() {
        let plain = BoxDomain::insulating(vec![0.0; 2], vec![1.0; 2]);
        let with = |c| plain.clone().with_wall(1, Side::Upper, c);
        assert!(!plain.walls_are_sources());
        let grounded = with(WallCondition::Electrode { potential: 0.0 });
        assert!(!grounded.walls_are_sources());
        assert!(with(WallCondition::Electrode { potential: -0.5 }).walls_are_sources());
        let charged = WallCondition::Insulating {
            surface_charge: 1e-3,
        };
        assert!(with(charged).walls_are_sources());
    }
}
