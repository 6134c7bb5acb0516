//! Property-based fuzzing of the two input parsers: whatever bytes a scenario
//! or a particle file holds, the loaders return a value or an error naming the
//! file, and never panic. (A panic fails the test; proptest then shrinks the
//! input to a minimal failing case.)
//!
//! CI runs proptest's default number of cases per property; a longer run:
//!
//!     PROPTEST_CASES=20000 cargo test --release --test suite fuzz_inputs

use std::path::Path;

use jko::Scenario;
use jko::particles::file::ParticleTable;
use proptest::prelude::*;

const VALID: &str = r#"
dimension = 2
time_step = 0.01
steps = 5
output_every = 2
seed = 4
on_collapse = "continue"
[coupling]
strength = 1.0
method = "tree"
softening = 0.1
accuracy = 1e-6
[density]
bandwidth = "auto"
[solver]
tolerance = 1e-6
max_iterations = 100
memory = 5
max_halvings = 3
[grid]
lower = [-2.0, -2.0]
upper = [2.0, 2.0]
cells = [10, 12]
[[species]]
name = "u"
charge = 1.0
diffusion = 1.0
exponent = 2.0
mass = 1.0
particles = 30
potential = { kind = "double_well", center = [0.0, 0.0], radius = 1.0, depth = 0.5 }
initial = { kind = "barenblatt", center = [0.0, 0.0], radius = 0.5 }
[[species]]
name = "v"
charge = -1.0
particles = 20
potential = { kind = "quadratic", center = [0.0, 0.0], stiffness = [1.0, 2.0] }
initial = { kind = "uniform", lower = [-1.0, -1.0], upper = [1.0, 1.0] }
"#;

/// Pieces that make plausible but often wrong TOML.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("-inf".to_string()),
        Just("-1".to_string()),
        Just("0".to_string()),
        Just("1e308".to_string()),
        Just("9223372036854775807".to_string()),
        Just("[]".to_string()),
        Just("[1.0]".to_string()),
        Just("[1.0, 2.0, 3.0]".to_string()),
        Just("\"\"".to_string()),
        Just("\"csv\"".to_string()),
        Just("{ kind = \"none\" }".to_string()),
        Just("{}".to_string()),
        Just("\n[[species]]\n".to_string()),
        Just("=".to_string()),
        "[a-z_]{1,8}".prop_map(|s| s),
        any::<f64>().prop_map(|v| format!("{v:?}")),
        any::<i64>().prop_map(|v| v.to_string()),
    ]
}

/// The valid scenario with a few spans replaced by tokens.
fn mutated_scenario() -> impl Strategy<Value = String> {
    prop::collection::vec((0..VALID.len(), 0usize..12, token()), 1..4).prop_map(|edits| {
        let mut s = VALID.to_string();
        for (at, len, tok) in edits {
            let at = at.min(s.len());
            let end = (at + len).min(s.len());
            if s.is_char_boundary(at) && s.is_char_boundary(end) {
                s.replace_range(at..end, &tok);
            }
        }
        s
    })
}

proptest! {
    #[test]
    fn the_scenario_parser_never_panics(text in mutated_scenario()) {
        if let Err(e) = Scenario::from_toml(&text, Path::new("fuzz.toml")) {
            prop_assert!(e.to_string().contains("fuzz.toml"), "{e}");
        }
    }

    #[test]
    fn arbitrary_text_is_not_a_scenario_panic(text in "\\PC{0,200}") {
        let _ = Scenario::from_toml(&text, Path::new("fuzz.toml"));
    }

    #[test]
    fn the_particle_loader_never_panics(
        header in prop::sample::subsequence(
            vec!["step", "time", "species", "id", "x", "y", "z", "weight", "density", "x"], 0..10),
        rows in prop::collection::vec(
            prop::collection::vec(prop_oneof![
                "[0-9]{1,3}",
                "-?[0-9]\\.[0-9]{1,3}(e-?[0-9])?",
                Just("NaN".to_string()),
                Just("inf".to_string()),
                Just("u".to_string()),
                Just("".to_string()),
                "[ -~]{0,4}",
            ], 0..11),
            0..6),
        raw in prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cloud.csv");
        let bytes = match raw {
            Some(b) => b,
            None => {
                let mut t = header.join(",") + "\n";
                for r in &rows {
                    t += &r.join(",");
                    t += "\n";
                }
                t.into_bytes()
            }
        };
        std::fs::write(&path, bytes).unwrap();
        for r in [ParticleTable::<2>::read(&path).map(|_| ()), ParticleTable::<3>::read(&path).map(|_| ())] {
            if let Err(e) = r {
                prop_assert!(e.to_string().contains("cloud.csv"), "{e}");
            }
        }
        if let Ok(t) = ParticleTable::<2>::read(&path) {
            let _ = t.frame(&path, "u", None);
            let _ = t.frame(&path, "u", Some(3));
        }
    }
}

proptest! {
    /// Checkpoints are inputs too (`--resume` reads them): arbitrary bytes, and
    /// a real checkpoint with bytes changed and its checksum recomputed (so
    /// the damage gets past the CRC), decode to a value or an error.
    #[test]
    fn the_checkpoint_decoder_never_panics(
        raw in prop::collection::vec(any::<u8>(), 0..300),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let _ = jko::io::checkpoint::Checkpoint::decode(&raw);
        let mut bytes = valid_checkpoint();
        let body = bytes.len() - 4;
        for (at, v) in edits {
            bytes[at.index(body)] = v;
        }
        let crc = crc32fast::hash(&bytes[..body]);
        bytes[body..].copy_from_slice(&crc.to_le_bytes());
        let _ = jko::io::checkpoint::Checkpoint::decode(&bytes);
    }
}

fn valid_checkpoint() -> Vec<u8> {
    use jko::io::checkpoint::{Checkpoint, FileEntry, Meta, Status};
    let entry = |p: &str| FileEntry {
        path: p.into(),
        len: 10,
        crc: 3,
    };
    Checkpoint {
        meta: Meta {
            program: jko::io::checkpoint::program_version(),
            status: Status::Running,
            inputs: vec![entry("s.toml")],
            dimension: 2,
            species: 1,
            particles: 3,
            step: 4,
            level: 0,
            calm_steps: 1,
            total_iterations: 10,
            total_evaluations: 0,
            unconverged_steps: 0,
            rejected_attempts: 0,
            events: 0,
            reported: vec![],
            last_frame: 4,
            outputs: vec![
                entry("particles.csv"),
                entry("energy.csv"),
                entry("events.csv"),
            ],
            kind: Default::default(),
            parts: Vec::new(),
        },
        initial_energy: 1.0,
        bandwidths: vec![0.1],
        positions: vec![0.0; 6],
        last_move: Some((0.01, vec![0.5; 6])),
        start: Some(([0.1, 0.2, -0.3], vec![0.5; 6])),
    }
    .encode()
}
