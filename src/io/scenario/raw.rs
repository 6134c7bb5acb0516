//! The raw serde layer of the scenario: one struct per fixed table, with
//! `deny_unknown_fields` so that a typo is an error with its line and column.
//! The `potential = {...}` and `initial = {...}` tables stay TOML values
//! here: their kind's own file reads them (`model::potential`,
//! `particles::initial`).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::error::{MAX_ECHO, clip};
use crate::util::checks::Scalars;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub dimension: i64,
    pub time_step: f64,
    pub steps: i64,
    pub output_every: Option<i64>,
    pub seed: Option<i64>,
    pub coupling: Option<RawCoupling>,
    pub density: Option<RawDensity>,
    pub solver: Option<RawSolver>,
    pub grid: Option<RawGrid>,
    pub on_collapse: Option<String>,
    pub species: Option<Vec<RawSpecies>>,
    pub domain: Option<RawDomain>,
    pub background: Option<Vec<RawBackground>>,
    pub steric: Option<RawSteric>,
    pub equilibrium: Option<RawEquilibrium>,
    pub output: Option<RawOutput>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOutput {
    pub vtk: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDomain {
    pub kind: Option<String>,
    pub lower: Option<Vec<f64>>,
    pub upper: Option<Vec<f64>>,
    pub wall: Option<Vec<RawWall>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWall {
    pub axis: i64,
    pub side: String,
    pub potential: Option<f64>,
    pub surface_charge: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackground {
    pub name: String,
    pub charge: f64,
    pub shape: toml::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSteric {
    pub volume: f64,
    pub temperature: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEquilibrium {
    pub tolerance: Option<f64>,
    pub growth: Option<f64>,
    pub max_stages: Option<i64>,
    pub stage_tolerance: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCoupling {
    pub strength: Option<f64>,
    pub method: Option<String>,
    pub softening: Option<f64>,
    pub accuracy: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDensity {
    pub bandwidth: Option<NumberOrWord>,
    pub method: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSolver {
    pub tolerance: Option<f64>,
    pub max_iterations: Option<i64>,
    pub memory: Option<i64>,
    pub max_halvings: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGrid {
    pub lower: Option<Vec<f64>>,
    pub upper: Option<Vec<f64>>,
    pub cells: Scalars,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSpecies {
    pub name: String,
    pub charge: Option<f64>,
    pub diffusion: Option<f64>,
    pub exponent: Option<f64>,
    pub mass: Option<f64>,
    pub particles: Option<i64>,
    pub potential: Option<toml::Value>,
    pub initial: Option<toml::Value>,
}

/// `bandwidth = 0.05` or `bandwidth = "auto"`.
#[derive(Debug, Clone)]
pub(super) enum NumberOrWord {
    Number(f64),
    Word(String),
}

impl<'de> Deserialize<'de> for NumberOrWord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = NumberOrWord;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or the string \"auto\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<NumberOrWord, E> {
                Ok(NumberOrWord::Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<NumberOrWord, E> {
                Ok(NumberOrWord::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<NumberOrWord, E> {
                Ok(NumberOrWord::Number(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<NumberOrWord, E> {
                Ok(NumberOrWord::Word(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// The TOML parser's message, which quotes the offending line: as is when it
/// is short, otherwise the line and column with an excerpt of the line around
/// the column (a 50 MB line is not echoed in full).
pub(super) fn toml_message(text: &str, e: &toml::de::Error) -> String {
    let full = e.to_string();
    if full.len() <= 4 * MAX_ECHO {
        return full.trim_end().to_string();
    }
    let Some(span) = e.span() else {
        return clip(full.trim_end(), 4 * MAX_ECHO);
    };
    let mut at = span.start.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let line = text[..at].matches('\n').count() + 1;
    let column = text[line_start..at].chars().count() + 1;
    let before: String = {
        let b: Vec<char> = text[line_start..at].chars().rev().take(60).collect();
        b.into_iter().rev().collect()
    };
    let after: String = text[at..line_end].chars().take(60).collect();
    format!(
        "TOML parse error at line {line}, column {column} (a line of {} characters; excerpt: \"{before}{after}\"): {}",
        text[line_start..line_end].chars().count(),
        clip(e.message().trim_end(), MAX_ECHO)
    )
}
