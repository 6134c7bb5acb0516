//! What the MPI examples share (`#[path = "common/mod.rs"] mod common;`;
//! not an example itself: cargo finds `examples/*.rs` and
//! `examples/*/main.rs`).

use std::time::Instant;

use jko::util::team::Team;

/// Best of `reps` of `f`, each started when every rank is there (after a
/// one-number gather that lines the ranks up).
pub fn best(team: &dyn Team, reps: usize, mut f: impl FnMut()) -> f64 {
    let mut all = vec![0.0; team.size()];
    (0..reps)
        .map(|_| {
            team.all_gather(&[0.0], &vec![1; team.size()], &mut all);
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}
