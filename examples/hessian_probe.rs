//! The spectrum of a JKO step's Hessian, the quantity L-BFGS iterations follow.
//!
//! In the scaled displacements Y of `jko::stepper` the objective's Hessian is
//! I + s^2 Hess E. This probe (2D scenarios) advances the run `STEPS` steps,
//! then, at X^n and by central differences of the gradient (step 1e-4 in Y),
//! prints the Rayleigh quotients v'Hv/v'v of plane-wave displacement fields
//! v = e cos(k x_1), longitudinal (e = e_1) and transverse (e = e_2), for a
//! range of k eps, and the extreme eigenvalues by power iteration, with the
//! particles that carry the top eigenvector.
//!
//!     cargo run --release --example hessian_probe -- SCENARIO.toml [STEPS]

use jko::energy::FreeEnergy;
use jko::{Scenario, Simulation};

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(p, q)| p * q).sum()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .map(String::as_str)
        .unwrap_or("data/scenarios/pnp_2d.toml");
    let steps: usize = args.get(2).map(|a| a.parse()).transpose()?.unwrap_or(0);
    let s = Scenario::from_file(path.as_ref())?;
    if s.dimension != 2 {
        return Err("hessian_probe takes 2D scenarios".into());
    }
    let mut sim = Simulation::<2>::new(&s)?;
    for _ in 0..steps {
        sim.advance()?;
    }
    let (x0, w, h) = (
        sim.cloud.positions.clone(),
        sim.cloud.weights.clone(),
        s.time_step,
    );
    let n = x0.len();
    let scale: Vec<f64> = w.iter().map(|wi| (h / wi).sqrt()).collect();
    let mut energy: FreeEnergy<2> = jko::stepper::free_energy(&s, &sim.cloud, &sim.plans)?;
    let mut grad_y = |y: &[f64]| -> Vec<f64> {
        let x: Vec<[f64; 2]> = (0..n)
            .map(|i| std::array::from_fn(|a| x0[i][a] + scale[i] * y[2 * i + a]))
            .collect();
        let mut g = vec![[0.0; 2]; n];
        energy.evaluate(&x, &mut g);
        (0..2 * n)
            .map(|k| y[k] + scale[k / 2] * g[k / 2][k % 2])
            .collect()
    };
    let delta = 1e-4;
    let mut hess = |v: &[f64]| -> Vec<f64> {
        let plus: Vec<f64> = v.iter().map(|a| delta * a).collect();
        let minus: Vec<f64> = v.iter().map(|a| -delta * a).collect();
        let (gp, gm) = (grad_y(&plus), grad_y(&minus));
        gp.iter()
            .zip(&gm)
            .map(|(a, b)| (a - b) / (2.0 * delta))
            .collect()
    };
    let eps = sim.bandwidths[0];
    println!(
        "N = {n}, eps = {eps:.4}, h = {h}, after {steps} steps; h D/eps^2 = {:.2} (species 1)",
        h * sim.cloud.blocks[0].diffusion / (eps * eps)
    );
    println!("k eps   longitudinal  transverse");
    for keps in [0.1, 0.3, 0.6, 1.0, 1.5, 2.0, 3.0, 5.0] {
        let k = keps / eps;
        let q: Vec<f64> = [0, 1]
            .iter()
            .map(|&axis| {
                let v: Vec<f64> = (0..2 * n)
                    .map(|c| {
                        if c % 2 == axis {
                            (k * x0[c / 2][0]).cos()
                        } else {
                            0.0
                        }
                    })
                    .collect();
                dot(&hess(&v), &v) / dot(&v, &v)
            })
            .collect();
        println!("{keps:5.2}   {:12.3}  {:10.3}", q[0], q[1]);
    }
    // Largest eigenvalue: power iteration on H + 30 I (H's spectrum lies
    // above -30 here, so the top of H + 30 I dominates); smallest: on c I - H.
    let start = |mult: usize| -> Vec<f64> {
        (0..2 * n)
            .map(|k| ((k * mult) % 1000) as f64 / 1000.0 - 0.5)
            .collect()
    };
    let mut power = |shift: f64, sign: f64, mut v: Vec<f64>| -> (f64, Vec<f64>) {
        let mut lambda = 0.0;
        for _ in 0..80 {
            let nv = dot(&v, &v).sqrt();
            v.iter_mut().for_each(|a| *a /= nv);
            let hv = hess(&v);
            lambda = dot(&hv, &v);
            v = hv
                .iter()
                .zip(&v)
                .map(|(a, b)| sign * a + shift * b)
                .collect();
        }
        (lambda, v)
    };
    let (lmax, top) = power(30.0, 1.0, start(7919));
    let (lmin, _) = power(1.05 * lmax, -1.0, start(104_729));
    let nt = dot(&top, &top).sqrt();
    let mut carriers: Vec<(f64, usize)> = (0..n)
        .map(|i| ((top[2 * i].powi(2) + top[2 * i + 1].powi(2)).sqrt() / nt, i))
        .collect();
    carriers.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!(
        "largest eigenvalue ~ {lmax:.3}, smallest ~ {lmin:.3}, ratio {:.1}",
        lmax / lmin
    );
    println!("top eigenvector: share of its norm on the 5 largest particles (position):");
    for (m, i) in &carriers[..5] {
        println!("  {m:.2} at ({:.3}, {:.3})", x0[*i][0], x0[*i][1]);
    }
    Ok(())
}
