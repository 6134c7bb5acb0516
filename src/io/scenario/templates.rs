//! `jko init KIND [FILE]`: commented scenarios to start from.
//!
//! Each template is one of the scenarios shipped in `data/scenarios/` (the
//! ones the tests and the README run, so a template is never a stale copy),
//! with a comment after every key saying what it is, and at the end the
//! optional sections it leaves out, commented out with their defaults. The
//! comments change nothing: a template parses to the same problem as its
//! source file (tested).

use std::fmt::Write as _;

/// A template: its kind (the name `jko init` takes), what it shows, its text.
#[derive(Debug, Clone, Copy)]
pub struct Template {
    /// The name given to `jko init`.
    pub kind: &'static str,
    /// One line for `jko init --list`.
    pub about: &'static str,
    /// The source scenario (`data/scenarios/...`).
    pub source: &'static str,
    text: &'static str,
}

macro_rules! template {
    ($kind:literal, $file:literal, $about:literal) => {
        Template {
            kind: $kind,
            about: $about,
            source: concat!("data/scenarios/", $file),
            text: include_str!(concat!("../../../data/scenarios/", $file)),
        }
    };
}

/// Every template, in the order `jko init --list` shows them.
pub const TEMPLATES: [Template; 13] = [
    template!(
        "pnp-2d",
        "pnp_2d.toml",
        "two-species Poisson-Nernst-Planck in free space, 2D (the default scenario)"
    ),
    template!(
        "pnp-3d",
        "pnp_3d.toml",
        "two-species Poisson-Nernst-Planck in free space, 3D (multipole tree)"
    ),
    template!(
        "keller-segel-2d",
        "keller_segel_2d.toml",
        "Keller-Segel chemotaxis below the critical mass, 2D"
    ),
    template!(
        "porous-medium-2d",
        "porous_medium_2d.toml",
        "porous medium equation (m = 2) from a Barenblatt profile, 2D"
    ),
    template!(
        "ou-1d",
        "ou_1d.toml",
        "Ornstein-Uhlenbeck: diffusion in a quadratic well, 1D (exact solution)"
    ),
    template!(
        "ou-2d",
        "ou_2d.toml",
        "Ornstein-Uhlenbeck: diffusion in a quadratic well, 2D (exact solution)"
    ),
    template!(
        "box-pnp-3d",
        "box_pnp_3d.toml",
        "PNP in a closed box with no-flux walls, 3D (bounded domain)"
    ),
    template!(
        "electrodes-1d",
        "electrodes_1d.toml",
        "an electrolyte between two electrodes at fixed potentials, 1D"
    ),
    template!(
        "nanochannel-2d",
        "nanochannel_2d.toml",
        "a nanochannel between charged insulating walls, 2D"
    ),
    template!(
        "pn-junction-1d",
        "pn_junction_1d.toml",
        "a p-n junction: carriers over a doping profile, 1D"
    ),
    template!(
        "pn-junction-2d",
        "pn_junction_2d.toml",
        "a p-n junction's equilibrium, 2D (jko equilibrium)"
    ),
    template!(
        "double-layer-1d",
        "double_layer_1d.toml",
        "the electric double layer at equilibrium, 1D (jko equilibrium)"
    ),
    template!(
        "double-layer-steric-1d",
        "double_layer_steric_1d.toml",
        "the double layer of finite-size ions (Bikerman), 1D"
    ),
];

/// The template named `kind`.
pub fn find(kind: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.kind == kind)
}

/// What a key means, by table and key.
fn describe(table: &str, key: &str) -> Option<&'static str> {
    Some(match (table, key) {
        ("", "dimension") => "d: 1, 2 or 3",
        ("", "time_step") => "h, the JKO step (time units)",
        ("", "steps") => "JKO steps of `jko run`",
        ("", "output_every") => {
            "particles.csv gets every this many steps (and step 0 and the last)"
        }
        ("", "seed") => "every random draw comes from this seed: same seed, same output",
        ("", "on_collapse") => "\"stop\" (default) or \"continue\" when a species collapses",
        ("coupling", "strength") => {
            "lambda: > 0 like charges repel (PNP), < 0 attract (Keller-Segel); 0 = off"
        }
        ("coupling", "method") => "\"direct\" pair sum, \"tree\" multipole, or \"auto\"",
        ("coupling", "softening") => "delta of the Plummer-softened Green's function",
        ("coupling", "accuracy") => "tree only: target relative error of the potential",
        ("density", "bandwidth") => "eps, the kernel's standard deviation, or \"auto\"",
        ("density", "method") => "\"neighbours\" (kd-tree), \"mesh\", or \"auto\"",
        ("solver", "tolerance") => "L-BFGS stops at this relative reduction of the gradient",
        ("solver", "max_iterations") => "L-BFGS iterations per step at most",
        ("solver", "memory") => "L-BFGS history length",
        ("solver", "max_halvings") => {
            "a failed step is retried as 2, 4, ... 2^max_halvings sub-steps"
        }
        ("grid", "lower") => "lower corner of the Eulerian grid (jko eulerian, --grid)",
        ("grid", "upper") => "upper corner of the Eulerian grid",
        ("grid", "cells") => "cells per axis of the Eulerian grid",
        ("domain", "kind") => "\"free\" (R^d) or \"box\" (no-flux walls, SPEC section 7)",
        ("domain", "lower") => "lower corner of the box",
        ("domain", "upper") => "upper corner of the box",
        ("domain.wall", "axis") => "the wall's axis (0 = x, 1 = y, 2 = z)",
        ("domain.wall", "side") => "\"lower\" or \"upper\" end of that axis",
        ("domain.wall", "potential") => "an electrode: psi fixed on the wall (Dirichlet)",
        ("domain.wall", "surface_charge") => {
            "a charged insulator: the wall's charge per unit area (Neumann)"
        }
        ("species", "name") => "the species' name in the output",
        ("species", "charge") => "z_k (default 1)",
        ("species", "diffusion") => "D_k >= 0 (0: no diffusion term)",
        ("species", "exponent") => "m: 1 linear diffusion, > 1 porous medium",
        ("species", "mass") => "M_k, the total mass (default 1)",
        ("species", "particles") => "N_k, the particles of this species",
        ("species", "potential") => {
            "U_k: none, quadratic (stiffness/2 |x - center|^2), double_well"
        }
        ("species", "initial") => {
            "initial law: gaussian, uniform, barenblatt, or csv (a particle file)"
        }
        ("background", "name") => "a fixed (doping) charge's name (SPEC section 8)",
        ("background", "charge") => "its total charge",
        ("background", "shape") => "where it sits: uniform, gaussian, or csv point charges",
        ("steric", "volume") => "v, the volume of one ion (SPEC section 10): v sum_k rho_k < 1",
        ("steric", "temperature") => "the temperature scaling the crowding entropy",
        ("equilibrium", "tolerance") => {
            "jko equilibrium stops at this relative reduction of |grad E|"
        }
        ("equilibrium", "growth") => "factor between the continuation's step sizes",
        ("equilibrium", "max_stages") => "continuation stages at most",
        ("equilibrium", "stage_tolerance") => "each stage's own L-BFGS tolerance",
        ("output", "vtk") => "also write a ParaView series in OUT/vtk/",
        _ => return None,
    })
}

/// The optional sections a template may leave out, commented out with
/// their defaults.
const OPTIONAL: [(&str, &str); 4] = [
    (
        "solver",
        "# [solver]                   # the L-BFGS minimization of each step\n\
         # tolerance = 1e-6\n# max_iterations = 1000\n# memory = 10\n# max_halvings = 6\n",
    ),
    (
        "output",
        "# [output]                   # extra output (README, \"Look at the results\")\n\
         # vtk = true                 # a ParaView series in OUT/vtk/ (.vtp/.vti + .pvd)\n",
    ),
    (
        "equilibrium",
        "# [equilibrium]              # `jko equilibrium` (SPEC section 9)\n\
         # tolerance = 1e-6\n# growth = 4.0\n# max_stages = 60\n# stage_tolerance = 1e-3\n",
    ),
    (
        "steric",
        "# [steric]                   # finite ion size (SPEC section 10)\n\
         # volume = 0.01\n# temperature = 1.0\n",
    ),
];

/// Column at which the key comments start.
const COMMENT_COLUMN: usize = 30;

impl Template {
    /// The commented scenario.
    pub fn text(&self) -> String {
        let mut out = format!(
            "# Written by `jko init {}` (jko {}), from {}.\n\
             # Run it:  jko run FILE --out runs/NAME   (README: the scenario format)\n#\n",
            self.kind,
            env!("CARGO_PKG_VERSION"),
            self.source
        );
        let mut table = String::new();
        let mut seen: Vec<String> = Vec::new();
        for line in self.text.lines() {
            let t = line.trim();
            if let Some(name) = t.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
                table = name.trim().to_string();
            } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                table = name.trim().to_string();
            }
            if t.starts_with('[') {
                seen.push(table.clone());
            }
            let key = t.split('=').next().unwrap_or("").trim();
            let note = (!t.starts_with('#') && t.contains('=') && !t.contains('#'))
                .then(|| describe(&table, key))
                .flatten();
            match note {
                Some(n) => {
                    let pad = COMMENT_COLUMN.saturating_sub(line.chars().count()).max(1);
                    let _ = writeln!(out, "{line}{:pad$}# {n}", "");
                }
                None => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        let missing: Vec<&str> = OPTIONAL
            .iter()
            .filter(|(name, _)| !seen.iter().any(|s| s == name))
            .map(|(_, text)| *text)
            .collect();
        if !missing.is_empty() {
            out.push_str("\n# Optional sections, with their defaults (remove the # to use one):\n");
            for m in missing {
                out.push('\n');
                out.push_str(m);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::scenario::Scenario;
    use std::path::Path;

    /// A template is its source scenario with comments: the same problem.
    #[test]
    fn every_template_parses_to_its_source_problem() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for t in &TEMPLATES {
            let source = root.join(t.source);
            let a = Scenario::from_file(&source).unwrap_or_else(|e| panic!("{}: {e}", t.kind));
            // Parsed as if it sat where its source does (csv paths resolve the same).
            let b = Scenario::from_toml(&t.text(), &source)
                .unwrap_or_else(|e| panic!("template {}: {e}", t.kind));
            assert_eq!(
                format!("{:?}", a.problem),
                format!("{:?}", b.problem),
                "{}",
                t.kind
            );
            assert_eq!(
                (a.steps, a.output_every, a.output, format!("{:?}", a.grid)),
                (b.steps, b.output_every, b.output, format!("{:?}", b.grid)),
                "{}",
                t.kind
            );
        }
    }

    #[test]
    fn every_key_of_every_template_is_explained() {
        for t in &TEMPLATES {
            for line in t.text().lines() {
                let code = line.split('#').next().unwrap_or("");
                if code.contains('=') && !line.contains('#') {
                    panic!("{}: no comment on `{line}`", t.kind);
                }
            }
        }
    }

    #[test]
    fn optional_sections_are_offered_only_when_absent() {
        let t = find("double-layer-steric-1d").unwrap().text();
        assert!(
            !t.contains("# [steric]"),
            "the template has its own [steric]"
        );
        assert!(t.contains("# [output]"));
        assert!(find("no-such-kind").is_none());
    }
}
