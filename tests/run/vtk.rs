//! ParaView output (issue 18): `[output] vtk = true` and `jko export --vtk`.
//!
//! The numbers in the VTK files are those of the CSVs, exactly; the series a
//! run writes from memory and the one `jko export` makes from its CSVs are
//! the same bytes (two independent paths); a killed and resumed run ends
//! with the series of a run never stopped; `--force` leaves no frame of the
//! run it replaces. VTK's own readers read these files in
//! python/tests/test_vtk.py.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::run::{jko, pnp_2d, records, stderr, write};

const GRID: &str = "\n[grid]\nlower = [-3.0, -3.0]\nupper = [3.0, 3.0]\ncells = [12, 10]\n";
const VTK_ON: &str = "\n[output]\nvtk = true\n";

/// The text between `<DataArray ... Name="name" ...>` and `</DataArray>`, as numbers.
fn data_array(xml: &str, name: &str) -> Vec<f64> {
    let tag = format!("Name=\"{name}\"");
    let at = xml.find(&tag).unwrap_or_else(|| panic!("no array {name}"));
    let start = at + xml[at..].find('>').unwrap() + 1;
    let end = start + xml[start..].find("</DataArray>").unwrap();
    xml[start..end]
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect()
}

/// Every file of a folder, by name.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn jko_ok(args: &[&str]) {
    let o = jko().args(args).output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn a_runs_vtk_series_holds_the_numbers_of_its_csv_and_equals_the_export() {
    let tmp = tempfile::tempdir().unwrap();
    let with = write(tmp.path(), "with.toml", &(pnp_2d(5, 2) + VTK_ON));
    let without = write(tmp.path(), "without.toml", &pnp_2d(5, 2));
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    jko_ok(&["run", p(&with), "--out", p(&a), "-q"]);
    jko_ok(&["run", p(&without), "--out", p(&b), "-q"]);
    assert!(!b.join("vtk").exists(), "no series unless asked");

    let series = files(&a.join("vtk"));
    let names: Vec<&str> = series.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "particles.pvd",
            "particles_000000.vtp",
            "particles_000002.vtp",
            "particles_000004.vtp",
            "particles_000005.vtp"
        ]
    );
    let pvd = String::from_utf8(series["particles.pvd"].clone()).unwrap();
    for (step, time) in [(0, "0.0"), (2, "0.02"), (4, "0.04"), (5, "0.05")] {
        let line =
            format!("timestep=\"{time}\" group=\"\" part=\"0\" file=\"particles_{step:06}.vtp\"");
        assert!(pvd.contains(&line), "{line} not in\n{pvd}");
    }
    // Step 4's frame against particles.csv's rows of step 4, number for number.
    let rows: Vec<_> = records(&a, "particles.csv")
        .into_iter()
        .filter(|r| &r[0] == "4")
        .collect();
    let xml = String::from_utf8(series["particles_000004.vtp"].clone()).unwrap();
    assert!(xml.contains(&format!("NumberOfPoints=\"{}\"", rows.len())));
    let col = |c: usize| -> Vec<f64> { rows.iter().map(|r| r[c].parse().unwrap()).collect() };
    let species: Vec<f64> = rows
        .iter()
        .map(|r| if &r[2] == "u" { 0.0 } else { 1.0 })
        .collect();
    assert_eq!(data_array(&xml, "species"), species);
    assert_eq!(data_array(&xml, "id"), col(3));
    assert_eq!(data_array(&xml, "weight"), col(6));
    assert_eq!(data_array(&xml, "density"), col(7));
    let points = data_array(&xml, "Points");
    let (x, y) = (col(4), col(5));
    for i in 0..rows.len() {
        assert_eq!(points[3 * i..3 * i + 3], [x[i], y[i], 0.0], "point {i}");
    }
    assert_eq!(data_array(&xml, "TimeValue"), [0.04]);

    // The export of the run made without a series: the same bytes.
    jko_ok(&["export", p(&b), "--vtk"]);
    assert!(
        files(&b.join("vtk")) == series,
        "export differs from the run's own series"
    );
    // Once there, replaced only with --force.
    let o = jko().args(["export", p(&b), "--vtk"]).output().unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("--force"));
    jko_ok(&["export", p(&b), "--vtk", "--force"]);
    assert!(files(&b.join("vtk")) == series);
    assert!(!b.join("vtk.partial").exists());
}

#[test]
fn grid_runs_write_image_data_and_export_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let with = write(tmp.path(), "with.toml", &(pnp_2d(3, 2) + GRID + VTK_ON));
    let without = write(tmp.path(), "without.toml", &(pnp_2d(3, 2) + GRID));
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    jko_ok(&["eulerian", p(&with), "--out", p(&a), "-q"]);
    jko_ok(&["eulerian", p(&without), "--out", p(&b), "-q"]);
    let series = files(&a.join("vtk"));
    let names: Vec<&str> = series.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "density.pvd",
            "density_000000.vti",
            "density_000002.vti",
            "density_000003.vti"
        ]
    );
    let xml = String::from_utf8(series["density_000002.vti"].clone()).unwrap();
    assert!(xml.contains("WholeExtent=\"0 12 0 10 0 0\""), "{xml:.400}");
    assert!(
        xml.contains("Origin=\"-3.0 -3.0 0\" Spacing=\"0.5 0.6 1\""),
        "{xml:.400}"
    );
    // density.csv's rows of species v at step 2, in file order (x fastest).
    let v: Vec<f64> = records(&a, "density.csv")
        .into_iter()
        .filter(|r| &r[0] == "2" && &r[2] == "v")
        .map(|r| r[5].parse().unwrap())
        .collect();
    assert_eq!(v.len(), 120);
    assert_eq!(data_array(&xml, "v"), v);
    // The export: the same files, but for the grid's origin and spacing,
    // which density.csv gives only as cell centers (recovered to rounding).
    jko_ok(&["export", p(&b), "--vtk"]);
    let exported = files(&b.join("vtk"));
    assert_eq!(exported.len(), series.len());
    for (name, bytes) in &series {
        let (ours, theirs) = (
            String::from_utf8(bytes.clone()).unwrap(),
            String::from_utf8(exported[name].clone()).unwrap(),
        );
        let geometry = |t: &str| -> (String, Vec<f64>) {
            let mut rest = String::new();
            let mut numbers = Vec::new();
            for line in t.lines() {
                if let Some(i) = line.find("Origin=") {
                    rest.push_str(&line[..i]);
                    numbers = line[i..]
                        .split(|c: char| c == '"' || c.is_whitespace())
                        .filter_map(|w| w.parse().ok())
                        .collect();
                } else {
                    rest.push_str(line);
                }
                rest.push('\n');
            }
            (rest, numbers)
        };
        let ((ra, ga), (rb, gb)) = (geometry(&ours), geometry(&theirs));
        assert!(ra == rb, "{name}: export differs from the run's own file");
        assert_eq!(ga.len(), gb.len(), "{name}");
        for (x, y) in ga.iter().zip(&gb) {
            assert!(
                (x - y).abs() <= 1e-12 * x.abs().max(1.0),
                "{name}: {ga:?} vs {gb:?}"
            );
        }
    }

    // An equilibrium's steps 0 and 1 share time 0: the series uses step numbers.
    let eq = tmp.path().join("eq");
    jko_ok(&["equilibrium", p(&with), "--out", p(&eq), "--grid", "-q"]);
    let pvd = std::fs::read_to_string(eq.join("vtk/density.pvd")).unwrap();
    assert!(
        pvd.contains("timestep=\"1.0\" group=\"\" part=\"0\" file=\"density_000001.vti\""),
        "{pvd}"
    );
}

#[test]
fn force_replaces_the_whole_series_and_export_refuses_what_is_no_run() {
    let tmp = tempfile::tempdir().unwrap();
    let long = write(tmp.path(), "long.toml", &(pnp_2d(4, 1) + VTK_ON));
    let short = write(tmp.path(), "short.toml", &(pnp_2d(2, 2) + VTK_ON));
    let dir = tmp.path().join("run");
    jko_ok(&["run", p(&long), "--out", p(&dir), "-q"]);
    assert!(dir.join("vtk/particles_000003.vtp").exists());
    jko_ok(&["run", p(&short), "--out", p(&dir), "-q", "--force"]);
    let names: Vec<String> = files(&dir.join("vtk")).into_keys().collect();
    assert_eq!(
        names,
        [
            "particles.pvd",
            "particles_000000.vtp",
            "particles_000002.vtp"
        ],
        "frames of the replaced run are gone"
    );

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = jko().args(["export", p(&empty), "--vtk"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("neither particles.csv"),
        "{}",
        stderr(&o)
    );
    let o = jko().args(["export", p(&empty)]).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "--vtk is required: {}",
        stderr(&o)
    );
    // A `vtk` that is not a folder is not the run's: refused, even with --force.
    let file_vtk = tmp.path().join("filevtk");
    std::fs::create_dir(&file_vtk).unwrap();
    std::fs::write(file_vtk.join("vtk"), b"mine").unwrap();
    let o = jko()
        .args(["run", p(&long), "--out", p(&file_vtk), "-q", "--force"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("where the run writes a folder"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(file_vtk.join("vtk")).unwrap(), b"mine");
}

/// Killed mid-run and resumed: the series is that of a run never stopped.
#[cfg(feature = "fault-injection")]
#[test]
fn a_resumed_run_ends_with_the_series_of_an_uninterrupted_one() {
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempfile::tempdir().unwrap();
    let s = write(tmp.path(), "s.toml", &(pnp_2d(9, 2) + VTK_ON));
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    jko_ok(&["run", p(&s), "--out", p(&a), "-q"]);
    for point in ["kill@step:5", "kill@frame:3"] {
        let _ = std::fs::remove_dir_all(&b);
        let o = jko()
            .args(["run", p(&s), "--out", p(&b), "-q"])
            .env("JKO_FAULT", point)
            .output()
            .unwrap();
        assert_eq!(o.status.signal(), Some(9), "{point}: {}", stderr(&o));
        jko_ok(&["run", p(&s), "--out", p(&b), "-q", "--resume"]);
        assert!(
            files(&a.join("vtk")) == files(&b.join("vtk")),
            "{point}: the resumed series differs"
        );
    }
}
