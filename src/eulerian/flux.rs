//! Numerical fluxes across one cell face, for one species, along one axis.
//!
//! Notation: cells L (left, lower index) and R = L + stride share the face; h is the cell
//! width along the axis; a positive flux moves mass from L to R. The cell update is
//! d rho_i/dt = - sum_axes (F_{i+1/2} - F_{i-1/2}) / h, with F = 0 on the walls.
//!
//! Both fluxes satisfy, for the variational derivative
//! xi_k = D_k f_m'(rho_k) + U_k + lambda z_k psi  (f_1' = log r + 1, f_m' = m r^(m-1)/(m-1)),
//! (xi_R - xi_L) * F <= 0 face by face, which is what makes the semi-discrete free energy
//! non-increasing: dE/dt = sum_faces (xi_R - xi_L) F h^{d-1} <= 0.

/// Bernoulli function B(x) = x / (e^x - 1), B(0) = 1; B(x) - B(-x) = -x, B > 0.
#[inline]
pub fn bernoulli(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0 - 0.5 * x
    } else {
        x / x.exp_m1()
    }
}

/// Scharfetter–Gummel flux for linear diffusion (m = 1, D > 0):
///
/// ```text
///   F = (D/h) [ B(Delta) rho_L - B(-Delta) rho_R ],   Delta = (phi_R - phi_L) / D,
/// ```
///
/// phi = U + lambda z psi. It equals -(D/h) c (g_R - g_L) with g = rho e^{phi/D} and c > 0,
/// so (xi_R - xi_L) F = -(D^2 c/h)(log g_R - log g_L)(g_R - g_L) <= 0; it is exact for
/// steady 1D profiles and reduces to the centered (second-order) flux
/// -D (rho_R - rho_L)/h - (rho_L + rho_R)/2 (phi_R - phi_L)/h as Delta -> 0.
/// Returns (F, outflow rate of L, outflow rate of R) with the rates (1/time) being the
/// coefficients of rho_L, rho_R in the mass leaving them through this face, divided by h.
#[inline]
pub fn scharfetter_gummel(
    rho_l: f64,
    rho_r: f64,
    phi_l: f64,
    phi_r: f64,
    diffusion: f64,
    h: f64,
) -> (f64, f64, f64) {
    let delta = (phi_r - phi_l) / diffusion;
    let (bp, bm) = (bernoulli(delta), bernoulli(-delta));
    let c = diffusion / h;
    (c * (bp * rho_l - bm * rho_r), c * bp / h, c * bm / h)
}

/// Monotonized-central limited slope (per cell, in density units, i.e. slope times h):
/// minmod(2 (r0 - rm), (rp - rm)/2, 2 (rp - r0)). With theta = 2 the face values
/// r0 -/+ s/2 stay between neighbours' values, hence non-negative.
#[inline]
pub fn mc_slope(rm: f64, r0: f64, rp: f64) -> f64 {
    let (a, b, c) = (2.0 * (r0 - rm), 0.5 * (rp - rm), 2.0 * (rp - r0));
    if a > 0.0 && b > 0.0 && c > 0.0 {
        a.min(b).min(c)
    } else if a < 0.0 && b < 0.0 && c < 0.0 {
        a.max(b).max(c)
    } else {
        0.0
    }
}

/// Slope of a cell next to a wall (in density units), from its one interior neighbour:
/// `interior - wall_cell`, clamped to [-2 rho, 2 rho] so both face values stay in [0, 2 rho].
/// (A zero slope there would make the wall cells first order, which in L1 costs a whole order
/// whenever the velocity at the first interior face is not zero.) Pass the difference with the
/// sign of the axis: for the first cell `rho_1 - rho_0`, for the last `rho_{n-1} - rho_{n-2}`.
#[inline]
pub fn wall_slope(difference: f64, rho: f64) -> f64 {
    difference.clamp(-2.0 * rho, 2.0 * rho)
}

/// Upwind flux in the variational derivative (Bailo–Carrillo–Hu):
///
/// ```text
///   u = -(xi_R - xi_L)/h,   F = rho_L^E max(u, 0) + rho_R^W min(u, 0),
/// ```
///
/// rho_L^E = rho_L + s_L/2 and rho_R^W = rho_R - s_R/2 the reconstructed face values
/// (piecewise linear, [`mc_slope`]). (xi_R - xi_L) F = -h (rho^E u+^2 + rho^W u-^2) <= 0.
/// Returns (F, outflow rate of L, outflow rate of R): since rho^E, rho^W <= 2 rho,
/// outflow of L through this face <= rho_L * 2 max(u,0)/h.
#[inline]
pub fn upwind(rho_e_l: f64, rho_w_r: f64, xi_l: f64, xi_r: f64, h: f64) -> (f64, f64, f64) {
    let u = -(xi_r - xi_l) / h;
    let (up, um) = (u.max(0.0), u.min(0.0));
    (rho_e_l * up + rho_w_r * um, 2.0 * up / h, -2.0 * um / h)
}
