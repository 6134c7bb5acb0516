//! The two runs side by side: the common species and written steps (their
//! times must agree to [`TIME_TOLERANCE`] relative), the common energy
//! curve, the particle sides' bandwidths, then one [`Row`] per common step
//! and species, every number of which must be finite.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::bandwidth::particle_bandwidth;
use super::measures::Measure;
use super::read::{Run, RunFiles, load, read_energy};
use super::wasserstein::wasserstein_1d;
use super::{Comparison, EnergyPoint, MASS_TOLERANCE, Pairing, Row, RunInfo, TIME_TOLERANCE};
use crate::error::{Error, Result};
use crate::model::kernel::WendlandC2;
use crate::util::parallel::sum_indexed;

fn times_agree(ta: f64, tb: f64) -> bool {
    (ta - tb).abs() <= TIME_TOLERANCE * ta.abs().max(tb.abs())
}

/// Steps for a message: all of them, or the first four and the last.
fn list_steps<'a>(steps: impl Iterator<Item = &'a u64>) -> String {
    let v: Vec<String> = steps.map(|s| s.to_string()).collect();
    if v.len() <= 8 {
        v.join(", ")
    } else {
        format!(
            "{}, ..., {} ({} steps)",
            v[..4].join(", "),
            v[v.len() - 1],
            v.len()
        )
    }
}

/// `sp` at `step` in `run`, or `None` if that run lacks it.
pub(super) fn measure<'r, const D: usize>(
    run: &'r Run<D>,
    bw: &BTreeMap<String, f64>,
    walls: Option<([f64; D], [f64; D])>,
    step: u64,
    sp: &str,
) -> Option<Measure<'r, D>> {
    match run {
        Run::Particles(p) => {
            let rows = p.rows.get(&(step, sp.to_string()))?;
            Some(Measure::Particles {
                x: rows.iter().map(|&r| p.table.positions[r]).collect(),
                w: rows.iter().map(|&r| p.table.weights[r]).collect(),
                kernel: WendlandC2::new(D, bw[sp]),
                walls,
            })
        }
        Run::Grid(g) => g.frames.get(&(step, sp.to_string())).map(Measure::Grid),
    }
}

/// The comparison of the runs `fa` and `fb` of dimension `D`.
pub(super) fn compare_dim<const D: usize>(
    fa: &RunFiles,
    fb: &RunFiles,
    pairing: Pairing,
) -> Result<Comparison> {
    let (ra, sa) = load::<D>(fa)?;
    let (rb, sb) = load::<D>(fb)?;
    let ea = read_energy(&fa.energy)?;
    let eb = read_energy(&fb.energy)?;
    let mut notes = Vec::new();

    let species = common_species(&ra, &rb)?;
    // (A's step, B's step, A's time).
    let (steps, energy): (Vec<(u64, u64, f64)>, Vec<EnergyPoint>) = match pairing {
        Pairing::SameStep => (
            common_steps(&ra, &rb)?
                .into_iter()
                .map(|(s, t)| (s, s, t))
                .collect(),
            energy_curve(fa, fb, &ea, &eb, &mut notes)?,
        ),
        Pairing::Last => {
            let last = |r: &Run<D>| {
                r.times()
                    .iter()
                    .next_back()
                    .map(|(&s, &t)| (s, t))
                    .expect("a run holds at least one frame")
            };
            let ((sa_, ta), (sb_, tb)) = (last(&ra), last(&rb));
            notes.push(format!(
                "--last: A's last written step {sa_} (time {ta}) against B's {sb_} (time {tb}); \
                 the rows are labelled with A's step"
            ));
            let energy = match (ea.get(&sa_), eb.get(&sb_)) {
                (Some(&(_, e_a)), Some(&(_, e_b))) => vec![EnergyPoint {
                    step: sa_,
                    time: ta,
                    energy_a: e_a,
                    energy_b: e_b,
                }],
                _ => {
                    notes.push("an energy file lacks the last written step: dE is blank".into());
                    Vec::new()
                }
            };
            (vec![(sa_, sb_, ta)], energy)
        }
    };

    // Bandwidths of the particle sides.
    let mut bw_a = BTreeMap::new();
    let mut bw_b = BTreeMap::new();
    for (files, run, scen, bw) in [(fa, &ra, &sa, &mut bw_a), (fb, &rb, &sb, &mut bw_b)] {
        if let Run::Particles(p) = run {
            for sp in &species {
                let (eps, note) = particle_bandwidth(files, p, scen.as_ref(), sp)?;
                bw.insert(sp.clone(), eps);
                notes.extend(note);
            }
        }
    }

    let (walls_a, walls_b) = (walls_of::<D>(&sa), walls_of::<D>(&sb));
    let energy_at: HashMap<u64, EnergyPoint> = energy.iter().map(|e| (e.step, *e)).collect();
    let mut rows = Vec::new();
    for &(step, step_b, time) in &steps {
        for sp in &species {
            let (Some(ma), Some(mb)) = (
                measure(&ra, &bw_a, walls_a, step, sp),
                measure(&rb, &bw_b, walls_b, step_b, sp),
            ) else {
                notes.push(format!(
                    "step {step}: species \"{sp}\" is missing from one run; skipped"
                ));
                continue;
            };
            let mut row = compare_measures(&ma, &mb, &ra, &rb, step, time, sp)?;
            let e = energy_at.get(&step);
            row.energy_a = e.map(|e| e.energy_a);
            row.energy_b = e.map(|e| e.energy_b);
            check_finite(&row, ra.file(), rb.file())?;
            rows.push(row);
        }
    }
    if rows.iter().any(|r| r.normalized) && D == 1 {
        notes.push(
            "masses differ on rows marked *: W1/W2 compare the laws normalized to mass 1".into(),
        );
    }
    let info = |f: &RunFiles, bandwidths| RunInfo {
        dir: f.dir.clone(),
        kind: f.kind,
        data_file: f.data.clone(),
        bandwidths,
    };
    Ok(Comparison {
        dimension: D,
        a: info(fa, bw_a),
        b: info(fb, bw_b),
        rows,
        energy,
        notes,
    })
}

/// The species both runs hold; none is an error.
fn common_species<const D: usize>(ra: &Run<D>, rb: &Run<D>) -> Result<Vec<String>> {
    let species: Vec<String> = ra.species().intersection(&rb.species()).cloned().collect();
    if species.is_empty() {
        return Err(Error::input(
            rb.file(),
            "column `species`",
            format!(
                "no species in common with {} (A has {:?}, B has {:?})",
                ra.file().display(),
                ra.species(),
                rb.species()
            ),
        ));
    }
    Ok(species)
}

/// The written steps both runs hold, with A's time; none, or a step whose
/// times differ, is an error.
fn common_steps<const D: usize>(ra: &Run<D>, rb: &Run<D>) -> Result<Vec<(u64, f64)>> {
    let steps: Vec<(u64, f64)> = ra
        .times()
        .iter()
        .filter(|(s, _)| rb.times().contains_key(s))
        .map(|(&s, &t)| (s, t))
        .collect();
    if steps.is_empty() {
        return Err(Error::input(
            rb.file(),
            "column `step`",
            format!(
                "no written step in common with {} (A has steps {}; B has steps {})",
                ra.file().display(),
                list_steps(ra.times().keys()),
                list_steps(rb.times().keys())
            ),
        ));
    }
    for &(s, ta) in &steps {
        let tb = rb.times()[&s];
        if !times_agree(ta, tb) {
            return Err(Error::input(
                rb.file(),
                format!("step {s}, column `time`"),
                format!(
                    "time {tb}, but {} has time {ta} at step {s}: the runs do not use the same time step",
                    ra.file().display()
                ),
            ));
        }
    }
    Ok(steps)
}

/// energy_A and energy_B at every step both energy files hold (their times
/// must agree, their difference be finite); none is noted.
fn energy_curve(
    fa: &RunFiles,
    fb: &RunFiles,
    ea: &BTreeMap<u64, (f64, f64)>,
    eb: &BTreeMap<u64, (f64, f64)>,
    notes: &mut Vec<String>,
) -> Result<Vec<EnergyPoint>> {
    let mut energy = Vec::new();
    for (&s, &(ta, ea_s)) in ea {
        if let Some(&(tb, eb_s)) = eb.get(&s) {
            if !times_agree(ta, tb) {
                return Err(Error::input(
                    &fb.energy,
                    format!("step {s}, column `time`"),
                    format!("time {tb}, but {} has time {ta}", fa.energy.display()),
                ));
            }
            if !(ea_s - eb_s).is_finite() {
                return Err(Error::Numerical(format!(
                    "step {s}: energy_A - energy_B = {ea_s:e} - {eb_s:e} is not a finite number ({} / {})",
                    fa.energy.display(),
                    fb.energy.display()
                )));
            }
            energy.push(EnergyPoint {
                step: s,
                time: ta,
                energy_a: ea_s,
                energy_b: eb_s,
            });
        }
    }
    if energy.is_empty() {
        notes.push(format!(
            "the energy files have no step in common: dE is blank ({} / {})",
            fa.energy.display(),
            fb.energy.display()
        ));
    }
    Ok(energy)
}

/// The row of species `sp` at `step` (energies blank): moments, L1 on the
/// common grid, W1/W2 in 1D. A side without positive mass is an error.
fn compare_measures<const D: usize>(
    ma: &Measure<D>,
    mb: &Measure<D>,
    ra: &Run<D>,
    rb: &Run<D>,
    step: u64,
    time: f64,
    sp: &str,
) -> Result<Row> {
    let what = format!("step {step}, species \"{sp}\"");
    let mo_a = ma.moments();
    let mo_b = mb.moments();
    for (mo, run) in [(&mo_a, ra), (&mo_b, rb)] {
        if mo.mass.is_nan() || mo.mass <= 0.0 {
            return Err(Error::input(
                run.file(),
                format!("step {step}"),
                format!("{what}: the total mass is {} (must be positive)", mo.mass),
            ));
        }
    }
    let distance = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            .sqrt()
    };
    let mean_distance = distance(&mo_a.mean, &mo_b.mean);
    let cov_distance = distance(&mo_a.cov, &mo_b.cov);

    let grid = super::common_grid::for_pair(ma, mb, ra.file(), &what)?;
    let va = ma.evaluate(&grid);
    let vb = mb.evaluate(&grid);
    let l1 = sum_indexed(va.len(), |i| (va[i] - vb[i]).abs()) * grid.cell_volume();

    let normalized = (mo_a.mass - mo_b.mass).abs() > MASS_TOLERANCE * mo_a.mass.max(mo_b.mass);
    let (w1, w2) = if D == 1 {
        let (w1, w2) = wasserstein_1d(&ma.quantile(), &mb.quantile());
        (Some(w1), Some(w2))
    } else {
        (None, None)
    };
    Ok(Row {
        step,
        time,
        species: sp.to_string(),
        mass_a: mo_a.mass,
        mass_b: mo_b.mass,
        mean_a: mo_a.mean,
        mean_b: mo_b.mean,
        cov_a: mo_a.cov,
        cov_b: mo_b.cov,
        mean_distance,
        cov_distance,
        l1,
        l1_cells: grid.cells().to_vec(),
        l1_spacing: grid.spacings().to_vec(),
        w1,
        w2,
        normalized,
        energy_a: None,
        energy_b: None,
    })
}

/// Every number of `row` is finite: an overflow (huge coordinates or
/// weights, a kernel too narrow for f64) is an error naming the step, the
/// species and the measure, never a result.
fn check_finite(row: &Row, fa: &Path, fb: &Path) -> Result<()> {
    let mut values: Vec<(&str, f64)> = vec![("mass A", row.mass_a), ("mass B", row.mass_b)];
    values.extend(row.mean_a.iter().map(|&v| ("mean A", v)));
    values.extend(row.mean_b.iter().map(|&v| ("mean B", v)));
    values.extend(row.cov_a.iter().map(|&v| ("covariance A", v)));
    values.extend(row.cov_b.iter().map(|&v| ("covariance B", v)));
    values.extend([
        ("|mean_A - mean_B|", row.mean_distance),
        ("|cov_A - cov_B|_F", row.cov_distance),
        ("L1", row.l1),
    ]);
    values.extend(row.w1.map(|v| ("W1", v)));
    values.extend(row.w2.map(|v| ("W2", v)));
    values.extend(row.energy_diff().map(|v| ("energy_A - energy_B", v)));
    match values.iter().find(|(_, v)| !v.is_finite()) {
        None => Ok(()),
        Some((what, v)) => Err(Error::Numerical(format!(
            "comparing {} and {}: step {}, species \"{}\": {what} = {v} is not a finite number (values too large for f64: check the coordinates, weights and energies)",
            fa.display(),
            fb.display(),
            row.step,
            row.species
        ))),
    }
}

/// The walls of a particle run in a box (from its scenario): its estimate is
/// reflected at them, as the solver's (SPEC §7).
pub(super) fn walls_of<const D: usize>(
    s: &Option<crate::io::scenario::Scenario>,
) -> Option<([f64; D], [f64; D])> {
    s.as_ref().and_then(|s| s.domain.as_box()).map(|b| {
        (
            std::array::from_fn(|a| b.lower[a]),
            std::array::from_fn(|a| b.upper[a]),
        )
    })
}
