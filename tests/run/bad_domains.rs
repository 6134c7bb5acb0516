//! Bad `[domain]`, `[[domain.wall]]` and `[[background]]` input (SPEC §7-8):
//! each is refused by `jko run` at load time with exit status 2, a message
//! naming the scenario file and the key (or the particle file and its row),
//! no panic, and no output directory.

use crate::support::run::{jko, write};

/// A valid 1D electrolyte between two electrodes, with a background.
const BASE: &str = r#"
dimension = 1
time_step = 0.01
steps = 1
[coupling]
strength = 1.0
softening = 0.01
[density]
bandwidth = 0.05
[domain]
kind = "box"
lower = [0.0]
upper = [2.0]
[[domain.wall]]
axis = 0
side = "lower"
potential = 1.0
[[domain.wall]]
axis = 0
side = "upper"
potential = 0.0
[[background]]
name = "donors"
charge = 0.5
shape = { kind = "uniform", lower = [0.0], upper = [1.0] }
[[species]]
name = "plus"
particles = 50
initial = { kind = "uniform", lower = [0.0], upper = [2.0] }
[[species]]
name = "minus"
charge = -1.0
particles = 50
initial = { kind = "gaussian", mean = [1.0], std = 0.3 }
"#;

/// `BASE` with `from` replaced by `to` (in a folder holding `files`) is
/// refused with exit 2 and a message holding every needle.
fn refused_with(from: &str, to: &str, files: &[(&str, &str)], needles: &[&str]) {
    assert!(BASE.contains(from), "test bug: `{from}` not in BASE");
    let tmp = tempfile::tempdir().unwrap();
    for (name, text) in files {
        write(tmp.path(), name, text);
    }
    let scen = write(tmp.path(), "walls.toml", &BASE.replacen(from, to, 1));
    let out = tmp.path().join("out");
    let o = jko()
        .args(["run", scen.to_str().unwrap(), "--out"])
        .arg(&out)
        .arg("-q")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "`{to}`: {stderr}");
    assert!(!stderr.contains("panicked"), "`{to}`: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "`{to}`: `{n}` not in {stderr}");
    }
    assert!(!out.exists(), "`{to}`: a refused run left its directory");
}

fn refused(from: &str, to: &str, needles: &[&str]) {
    let mut all = vec!["walls.toml"];
    all.extend_from_slice(needles);
    refused_with(from, to, &[], &all);
}

#[test]
fn the_base_scenario_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let scen = write(tmp.path(), "walls.toml", BASE);
    let o = jko()
        .args(["run", scen.to_str().unwrap(), "--out"])
        .arg(tmp.path().join("out"))
        .arg("-q")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn bad_domain_tables_are_refused_naming_the_key() {
    refused(
        "kind = \"box\"",
        "kind = \"sphere\"",
        &["domain.kind", "\"sphere\"", "\"box\""],
    );
    refused(
        "upper = [2.0]\n[[domain.wall]]",
        "[[domain.wall]]",
        &["domain.upper", "missing"],
    );
    refused(
        "lower = [0.0]\nupper = [2.0]",
        "lower = [0.0, 0.0]\nupper = [2.0]",
        &["domain.lower", "component"],
    );
    refused(
        "upper = [2.0]\n[[domain.wall]]",
        "upper = [0.0]\n[[domain.wall]]",
        &["domain.upper", "must exceed"],
    );
    refused(
        "kind = \"box\"",
        "kind = \"box\"\nradius = 2.0",
        &["radius"],
    );
    refused(
        "kind = \"box\"\nlower = [0.0]\nupper = [2.0]",
        "kind = \"free\"\nlower = [0.0]\nupper = [2.0]",
        &["domain.lower", "only a box"],
    );
    refused(
        "upper = [2.0]\n[[domain.wall]]",
        "upper = [inf]\n[[domain.wall]]",
        &["domain.upper", "finite"],
    );
    refused(
        "softening = 0.01",
        "softening = 0.0",
        &["coupling.softening", "in a box"],
    );
}

#[test]
fn bad_walls_are_refused_naming_the_key() {
    refused(
        "axis = 0\nside = \"lower\"",
        "axis = 1\nside = \"lower\"",
        &["domain.wall[0].axis", "0 to 0"],
    );
    refused(
        "axis = 0\nside = \"lower\"",
        "axis = 0\nside = \"left\"",
        &["domain.wall[0].side", "\"left\""],
    );
    refused(
        "potential = 1.0",
        "potential = 1.0\nsurface_charge = 0.1",
        &["domain.wall[0].potential", "at most one"],
    );
    refused(
        "side = \"upper\"",
        "side = \"lower\"",
        &["domain.wall[1].side", "twice"],
    );
    refused(
        "potential = 1.0",
        "potential = nan",
        &["domain.wall[0].potential", "finite"],
    );
    refused("potential = 1.0", "voltage = 1.0", &["voltage"]);
}

#[test]
fn laws_outside_the_box_and_charged_boxes_are_refused() {
    refused(
        "initial = { kind = \"uniform\", lower = [0.0], upper = [2.0] }",
        "initial = { kind = \"uniform\", lower = [0.0], upper = [2.5] }",
        &["species[0].initial", "not inside the domain"],
    );
    refused(
        "mean = [1.0]",
        "mean = [3.0]",
        &["species[1].initial.mean", "outside the domain"],
    );
    // Insulating walls (no electrode): the net charge 0.5 of the donors is refused.
    refused(
        "[[domain.wall]]\naxis = 0\nside = \"lower\"\npotential = 1.0\n[[domain.wall]]\naxis = 0\nside = \"upper\"\npotential = 0.0\n",
        "",
        &["domain", "electroneutral", "net charge is 5e-1"],
    );
    refused(
        "bandwidth = 0.05",
        "bandwidth = 0.05\n[grid]\nlower = [0.0]\nupper = [3.0]\ncells = 10",
        &["grid.upper", "the domain's box"],
    );
    let csv = "step,species,x,weight\n0,plus,0.5,0.01\n0,plus,2.5,0.01\n";
    refused_with(
        "particles = 50\ninitial = { kind = \"uniform\", lower = [0.0], upper = [2.0] }",
        "initial = { kind = \"csv\", path = \"start.csv\" }",
        &[("start.csv", csv)],
        &["start.csv", "plus", "outside the domain's box"],
    );
}

#[test]
fn bad_backgrounds_are_refused_naming_the_key() {
    refused(
        "kind = \"uniform\", lower = [0.0], upper = [1.0]",
        "kind = \"step\", lower = [0.0], upper = [1.0]",
        &["background[0].shape.kind", "\"step\""],
    );
    refused(
        "lower = [0.0], upper = [1.0] }",
        "lower = [1.0], upper = [3.0] }",
        &["background[0].shape", "outside the domain"],
    );
    refused(
        "lower = [0.0], upper = [1.0] }",
        "lower = [1.0], upper = [0.5] }",
        &["background[0].shape.upper", "must exceed"],
    );
    refused("charge = 0.5", "charge = inf", &["background[0].charge"]);
    refused(
        "name = \"donors\"",
        "name = \"plus\"\ncolour = 1",
        &["colour"],
    );
    let csv = "step,species,x,weight\n0,donors,0.5,0.2\n0,donors,1.5,-0.1\n";
    refused_with(
        "shape = { kind = \"uniform\", lower = [0.0], upper = [1.0] }",
        "shape = { kind = \"csv\", path = \"fixed.csv\" }",
        &[("fixed.csv", csv)],
        &["walls.toml", "background[0].charge", "sum to 0.1"],
    );
}
