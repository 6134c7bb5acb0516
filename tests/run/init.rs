//! `jko init` (issue 18): commented scenarios to start from. That each
//! template parses to the problem of its source file is a unit test
//! (src/io/scenario/templates.rs); here, the command: the list, standard
//! output, a new file, refusals.

use crate::support::run::{jko, stderr};

#[test]
fn init_lists_writes_and_refuses() {
    let o = jko().args(["init", "--list"]).output().unwrap();
    assert!(o.status.success());
    let list = String::from_utf8(o.stdout).unwrap();
    for kind in [
        "pnp-2d",
        "keller-segel-2d",
        "porous-medium-2d",
        "nanochannel-2d",
        "electrodes-1d",
        "double-layer-1d",
        "double-layer-steric-1d",
        "pn-junction-2d",
    ] {
        assert!(
            list.lines().any(|l| l.starts_with(kind)),
            "{kind} not in\n{list}"
        );
    }

    let o = jko().args(["init", "keller-segel-2d"]).output().unwrap();
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("strength = -1.0") && text.contains("# lambda"));

    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("ou.toml");
    let o = jko().args(["init", "ou-1d"]).arg(&file).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = jko().args(["init", "ou-1d"]).output().unwrap().stdout;
    assert_eq!(std::fs::read(&file).unwrap(), stdout);
    // The file runs as it is.
    let o = jko()
        .args(["run"])
        .arg(&file)
        .arg("--out")
        .arg(tmp.path().join("ou"))
        .arg("-q")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));

    // An existing file is replaced only with --force.
    std::fs::write(&file, "mine").unwrap();
    let o = jko().args(["init", "pnp-2d"]).arg(&file).output().unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
    let o = jko()
        .args(["init", "pnp-2d", "--force"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains("jko init pnp-2d")
    );

    let o = jko().args(["init", "pnp-4d"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("unknown kind \"pnp-4d\"") && e.contains("pnp-2d"),
        "{e}"
    );
}
