//! `[steric]` input the run refuses (SPEC §10): an initial cloud already at
//! or beyond close packing is refused by `jko run` at load time with exit
//! status 2, a message naming the scenario file and `steric.volume`, no
//! panic, and no output directory; the same scenario with a smaller volume
//! runs.

use crate::support::run::{jko, write};

/// Two species of mass 1 spread uniformly on [0, 1]: a total density of
/// about 2, so close packing is passed for v above about 0.5.
fn scenario(volume: f64) -> String {
    format!(
        r#"
dimension = 1
time_step = 0.01
steps = 1
[density]
bandwidth = 0.05
[steric]
volume = {volume}
[[species]]
name = "plus"
particles = 50
initial = {{ kind = "uniform", lower = [0.0], upper = [1.0] }}
[[species]]
name = "minus"
charge = -1.0
particles = 50
initial = {{ kind = "uniform", lower = [0.0], upper = [1.0] }}
"#
    )
}

fn run(volume: f64) -> (std::process::Output, bool) {
    let tmp = tempfile::tempdir().unwrap();
    let scen = write(tmp.path(), "crowded.toml", &scenario(volume));
    let out = tmp.path().join("out");
    let o = jko()
        .args(["run", scen.to_str().unwrap(), "--out"])
        .arg(&out)
        .arg("-q")
        .output()
        .unwrap();
    (o, out.exists())
}

#[test]
fn an_initial_cloud_beyond_close_packing_is_refused_by_the_cli() {
    let (o, made) = run(0.9);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for needle in [
        "crowded.toml",
        "steric.volume",
        "close packing",
        "1/v is 1.1111111111111112e0",
        "smaller steric.volume",
    ] {
        assert!(stderr.contains(needle), "`{needle}` not in {stderr}");
    }
    assert!(!made, "a refused run left its directory");
    let (o, made) = run(0.05);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(made);
}
