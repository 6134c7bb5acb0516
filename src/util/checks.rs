//! Checks of the numbers a settings table gives, with errors that name the
//! file and the key (`species[1].potential.stiffness[0]`), shared by every
//! module that parses a part of the scenario: the sections of
//! `io::scenario`, and the kinds of potential (`model::potential`) and of
//! initial law (`particles::initial`), which parse their own tables.
//!
//! Ranges, chosen so that no size computation or product of a few
//! parameters can overflow before the numerics start:
//! * every real number is at most [`MAX_MAGNITUDE`] = 1e100 in magnitude, so
//!   squares and products of three stay finite;
//! * a length, weight or rate (time step, bandwidth, softening, std, radius,
//!   stiffness, mass, charge...) is 0 where 0 is allowed or at least
//!   [`MIN_MAGNITUDE`] = 1e-100, so its square and cube are normal numbers;
//! * counts are integers in the range their caller gives.
//!
//! A `{ kind = "...", ... }` table is read in two steps: `kind_entry` finds
//! its kind in a registration list (one entry per kind, so the list of
//! expected kinds in the error is the list itself), and `strict` reads it
//! into the strict serde struct of that kind, refusing unknown keys (serde's
//! internally tagged enums would silently accept them).

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use crate::error::{Error, MAX_ECHO, Result, clip};

/// Largest magnitude of any real number in a scenario: the square of a
/// coordinate or a length, and the product of three parameters, stay finite.
pub const MAX_MAGNITUDE: f64 = 1e100;

/// Smallest non-zero magnitude of a length, weight or rate: its square and
/// cube (eps^d in d = 3) are still normal f64 numbers.
pub const MIN_MAGNITUDE: f64 = 1e-100;

/// Checks numbers and names the file and the key in its errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checker<'a> {
    /// The file the settings come from.
    pub file: &'a Path,
    /// The length every vector must have.
    pub dimension: usize,
}

impl Checker<'_> {
    /// An input error at `key` of the file.
    pub fn err(&self, key: &str, msg: impl Into<String>) -> Error {
        Error::input(self.file, key, msg)
    }

    /// A finite number of magnitude at most [`MAX_MAGNITUDE`] (coordinates).
    pub fn finite(&self, key: &str, v: f64) -> Result<f64> {
        if !v.is_finite() {
            Err(self.err(key, format!("must be a finite number, got {v}")))
        } else if v.abs() > MAX_MAGNITUDE {
            Err(self.err(
                key,
                format!(
                    "must be at most {MAX_MAGNITUDE:e} in magnitude (so that its square and \
                     products with other parameters stay finite), got {v:e}"
                ),
            ))
        } else {
            Ok(v)
        }
    }

    /// A [`finite`](Self::finite) scale (length, weight, rate, charge): 0 or
    /// of magnitude at least [`MIN_MAGNITUDE`].
    pub fn scale(&self, key: &str, v: f64) -> Result<f64> {
        let v = self.finite(key, v)?;
        if v != 0.0 && v.abs() < MIN_MAGNITUDE {
            return Err(self.err(
                key,
                format!(
                    "must be 0 or at least {MIN_MAGNITUDE:e} in magnitude (so that its square \
                     and cube are normal numbers), got {v:e}"
                ),
            ));
        }
        Ok(v)
    }

    /// A scale > 0, so at least [`MIN_MAGNITUDE`].
    pub fn positive(&self, key: &str, v: f64) -> Result<f64> {
        let v = self.finite(key, v)?;
        if v <= 0.0 {
            return Err(self.err(key, format!("must be positive, got {v}")));
        }
        if v < MIN_MAGNITUDE {
            return Err(self.err(
                key,
                format!(
                    "must be at least {MIN_MAGNITUDE:e} (so that its square and cube are normal \
                     numbers), got {v:e}"
                ),
            ));
        }
        Ok(v)
    }

    /// A scale >= 0.
    pub fn non_negative(&self, key: &str, v: f64) -> Result<f64> {
        let v = self.finite(key, v)?;
        if v < 0.0 {
            return Err(self.err(key, format!("must be >= 0, got {v}")));
        }
        self.scale(key, v)
    }

    /// An integer in `min..=max`.
    pub fn count(&self, key: &str, v: i64, min: i64, max: usize) -> Result<usize> {
        if v < min {
            return Err(self.err(key, format!("must be an integer >= {min}, got {v}")));
        }
        if v as u64 > max as u64 {
            return Err(self.err(key, format!("must be at most {max}, got {v}")));
        }
        Ok(v as usize)
    }

    /// A vector of exactly `dimension` finite numbers.
    pub fn vector(&self, key: &str, v: &[f64]) -> Result<Vec<f64>> {
        if v.len() != self.dimension {
            return Err(self.err(
                key,
                format!(
                    "must have {} component(s) (the scenario's dimension), got {}",
                    self.dimension,
                    v.len()
                ),
            ));
        }
        for (a, &x) in v.iter().enumerate() {
            self.finite(&format!("{key}[{a}]"), x)?;
        }
        Ok(v.to_vec())
    }

    /// A number (broadcast to every axis) or a vector of length `dimension`.
    pub fn per_axis(&self, key: &str, s: &Scalars) -> Result<Vec<f64>> {
        if s.scalar {
            let v = self.finite(key, s.values[0])?;
            Ok(vec![v; self.dimension])
        } else {
            self.vector(key, &s.values)
        }
    }

    /// A [`vector`](Self::vector), the origin when absent.
    pub fn center(&self, key: &str, c: &Option<Vec<f64>>) -> Result<Vec<f64>> {
        match c {
            Some(c) => self.vector(key, c),
            None => Ok(vec![0.0; self.dimension]),
        }
    }

    /// The center c (the origin when absent) and radius r > 0 of a law or a
    /// potential built on the sphere |x - c| = r, checked as `{key}.center`
    /// then `{key}.radius`.
    pub fn center_and_radius(
        &self,
        key: &str,
        center: &Option<Vec<f64>>,
        radius: f64,
    ) -> Result<(Vec<f64>, f64)> {
        Ok((
            self.center(&format!("{key}.center"), center)?,
            self.positive(&format!("{key}.radius"), radius)?,
        ))
    }
}

/// A number or a vector of numbers (`stiffness = 1.0` or `stiffness = [1.0, 2.0]`).
#[derive(Debug, Clone)]
pub(crate) struct Scalars {
    values: Vec<f64>,
    scalar: bool,
}

impl<'de> Deserialize<'de> for Scalars {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalars;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or an array of numbers")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Scalars, E> {
                Ok(Scalars {
                    values: vec![v],
                    scalar: true,
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Scalars, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Scalars, E> {
                self.visit_f64(v as f64)
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Scalars, A::Error> {
                let mut values = Vec::new();
                while let Some(v) = seq.next_element::<f64>()? {
                    values.push(v);
                }
                Ok(Scalars {
                    values,
                    scalar: false,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// The entry of `kinds` (a registration list of `(kind, parser)`) that the
/// `{ kind = "...", ... }` table `v` at `key` asks for; an unknown kind is
/// refused with the list of known ones, `what` naming the concept
/// ("potential", "initial").
pub(crate) fn kind_entry<'k, T>(
    c: &Checker,
    key: &str,
    v: &toml::Value,
    what: &str,
    kinds: &'k [(&'static str, T)],
) -> Result<&'k T> {
    let kind = kind_of(c.file, key, v)?;
    if let Some((_, entry)) = kinds.iter().find(|(name, _)| *name == kind) {
        return Ok(entry);
    }
    Err(c.err(
        &format!("{key}.kind"),
        format!(
            "unknown {what} kind \"{}\"; expected {}",
            clip(kind, MAX_ECHO),
            alternatives(kinds.iter().map(|(name, _)| *name))
        ),
    ))
}

/// `"a", "b" or "c"`.
fn alternatives<'a>(names: impl ExactSizeIterator<Item = &'a str>) -> String {
    let n = names.len();
    let mut out = String::new();
    for (i, name) in names.enumerate() {
        if i > 0 {
            out.push_str(if i + 1 == n { " or " } else { ", " });
        }
        out.push_str(&format!("\"{name}\""));
    }
    out
}

/// The `kind` of a `{ kind = "...", ... }` table.
fn kind_of<'v>(file: &Path, key: &str, v: &'v toml::Value) -> Result<&'v str> {
    let table = v
        .as_table()
        .ok_or_else(|| Error::input(file, key, "must be a table like { kind = \"...\", ... }"))?;
    match table.get("kind") {
        Some(toml::Value::String(s)) => Ok(s.as_str()),
        Some(_) => Err(Error::input(
            file,
            format!("{key}.kind"),
            "must be a string",
        )),
        None => Err(Error::input(file, key, "missing key `kind`")),
    }
}

/// Deserialize the `{ kind = ..., ... }` table `v` at `key` into the strict
/// struct of its kind.
pub(crate) fn strict<T: serde::de::DeserializeOwned>(
    file: &Path,
    key: &str,
    kind: &str,
    v: &toml::Value,
) -> Result<T> {
    // Through TOML text, one key per line, so that the error's span names
    // the field at fault (a Value's own deserializer does not say which).
    let text = toml::to_string(v).map_err(|e| Error::input(file, key, e.to_string()))?;
    toml::from_str::<T>(&text).map_err(|e| {
        let field = e.span().and_then(|span| {
            let start = span.start.min(text.len());
            let end = span.end.clamp(start, text.len());
            if text.get(start..end)?.contains('\n') {
                return None;
            }
            let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
            let line = text[line_start..].lines().next()?;
            let (name, _) = line.split_once('=')?;
            Some(name.trim().trim_matches('"').to_string())
        });
        let location = match field {
            Some(f) => format!("{key}.{}", clip(&f, MAX_ECHO)),
            None => key.to_string(),
        };
        Error::input(
            file,
            location,
            format!("kind \"{kind}\": {}", clip(e.message(), MAX_ECHO)),
        )
    })
}

/// A checker for file `t.toml` in dimension `dimension`, for unit tests.
#[cfg(test)]
pub(crate) fn test_checker(dimension: usize) -> Checker<'static> {
    Checker {
        file: Path::new("t.toml"),
        dimension,
    }
}

/// A `{ kind = ..., ... }` table read from TOML text, for the unit tests of
/// the kinds.
#[cfg(test)]
pub(crate) fn table(text: &str) -> toml::Value {
    toml::Value::Table(toml::from_str(text).expect("a valid TOML table"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternatives_read_like_a_sentence() {
        assert_eq!(alternatives(["a"].into_iter()), "\"a\"");
        assert_eq!(alternatives(["a", "b"].into_iter()), "\"a\" or \"b\"");
        assert_eq!(
            alternatives(["a", "b", "c"].into_iter()),
            "\"a\", \"b\" or \"c\""
        );
    }

    #[test]
    fn errors_name_the_key() {
        let e = test_checker(2)
            .positive("x.radius", -1.0)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "t.toml: x.radius: must be positive, got -1");
        let e = test_checker(2)
            .vector("x.center", &[1.0, f64::NAN])
            .unwrap_err();
        assert!(e.to_string().contains("x.center[1]"), "{e}");
    }

    #[test]
    fn an_unknown_kind_lists_the_known_ones() {
        let kinds = [("one", 1), ("two", 2)];
        assert_eq!(
            *kind_entry(
                &test_checker(2),
                "p",
                &table("kind = \"two\""),
                "thing",
                &kinds
            )
            .unwrap(),
            2
        );
        let e = kind_entry(
            &test_checker(2),
            "p",
            &table("kind = \"three\""),
            "thing",
            &kinds,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.toml: p.kind: unknown thing kind \"three\"; expected \"one\" or \"two\""
        );
    }
}
