//! How a migration run is divided into waves: a canary first, then waves growing by a factor, smallest companies first.
//!
//! The canary is either the `n` smallest companies or companies named by
//! the operator. After it, wave `k` holds `⌈c·growthᵏ⁻¹⌉` companies, where
//! `c` is the canary's size, so the biggest companies (where a slow
//! backfill hurts most) come last, after the migration has run everywhere
//! else. Pure: `migrate` measures the sizes and runs the waves.
use std::fmt;

use crate::domain::Subdomain;

/// The first wave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Canary {
    /// The `n` smallest companies that need the migration.
    Smallest(usize),
    /// These companies, whatever their size.
    Named(Vec<Subdomain>),
}

/// How a run is divided, and when it stops.
#[derive(Clone, Debug, PartialEq)]
pub struct WaveOptions {
    pub canary: Canary,
    /// Each wave after the canary is this many times the one before (≥ 1).
    pub growth: f64,
    /// Companies that lead the canary whatever it is: the platform's own
    /// (`ENCLAVE_MIGRATION_CANARIES`).
    pub labelled: Vec<Subdomain>,
    /// The run stops after a wave in which more than this share of the
    /// companies failed (0 to 1; 0 stops at the first failure).
    pub abort_rate: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WaveError {
    #[error(
        "--canary takes a number of companies (1 or more) or a comma-separated list of subdomains"
    )]
    Canary,
    #[error("--canary names '{0}', which is not an active or paused company")]
    UnknownCanary(String),
    #[error("--growth must be a number of at least 1 (got {0})")]
    Growth(String),
    #[error("--abort-rate must be a number from 0 to 1 (got {0})")]
    AbortRate(String),
}

impl std::str::FromStr for Canary {
    type Err = WaveError;

    /// `3`, or `acme,globex`.
    fn from_str(s: &str) -> Result<Self, WaveError> {
        let s = s.trim();
        if let Ok(n) = s.parse::<usize>() {
            return if n == 0 {
                Err(WaveError::Canary)
            } else {
                Ok(Self::Smallest(n))
            };
        }
        let named = s
            .split(',')
            .map(|name| Subdomain::parse(name.trim()).map_err(|_| WaveError::Canary))
            .collect::<Result<Vec<_>, _>>()?;
        if named.is_empty() {
            return Err(WaveError::Canary);
        }
        Ok(Self::Named(named))
    }
}

impl fmt::Display for Canary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Smallest(n) => write!(f, "{n}"),
            Self::Named(names) => {
                let names: Vec<&str> = names.iter().map(Subdomain::as_str).collect();
                f.write_str(&names.join(","))
            }
        }
    }
}

/// `--growth`: a number of at least 1.
pub fn parse_growth(s: &str) -> Result<f64, WaveError> {
    match s.trim().parse::<f64>() {
        Ok(g) if g.is_finite() && g >= 1.0 => Ok(g),
        _ => Err(WaveError::Growth(s.to_owned())),
    }
}

/// `--abort-rate`: a number from 0 to 1.
pub fn parse_abort_rate(s: &str) -> Result<f64, WaveError> {
    match s.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(WaveError::AbortRate(s.to_owned())),
    }
}

/// One company to place in a wave.
pub struct Candidate<T> {
    pub item: T,
    pub subdomain: String,
    /// Bytes; `None` when it could not be measured (placed last).
    pub size: Option<u64>,
}

/// Divides `candidates` into waves: the canary, then waves growing by
/// `growth`, the rest smallest first (ties by subdomain). The `labelled`
/// companies (the platform's own, `ENCLAVE_MIGRATION_CANARIES`) lead the
/// canary, before the companies it names or its `n` smallest. Named or
/// labelled companies that are not among the candidates (already current)
/// are passed over; an empty wave is left out.
pub fn divide<T>(
    mut candidates: Vec<Candidate<T>>,
    canary: &Canary,
    labelled: &[Subdomain],
    growth: f64,
) -> Vec<Vec<T>> {
    candidates.sort_by(|a, b| {
        (a.size.is_none(), a.size, &a.subdomain).cmp(&(b.size.is_none(), b.size, &b.subdomain))
    });
    let is_in =
        |names: &[Subdomain], c: &Candidate<T>| names.iter().any(|n| n.as_str() == c.subdomain);
    let (mut first, candidates): (Vec<_>, Vec<_>) =
        candidates.into_iter().partition(|c| is_in(labelled, c));
    let rest = match canary {
        Canary::Smallest(n) => {
            let mut candidates = candidates;
            let rest = candidates.split_off((*n).min(candidates.len()));
            first.extend(candidates);
            rest
        }
        Canary::Named(names) => {
            let (named, rest): (Vec<_>, Vec<_>) =
                candidates.into_iter().partition(|c| is_in(names, c));
            first.extend(named);
            rest
        }
    };
    let canary_size = match canary {
        Canary::Smallest(n) => *n,
        Canary::Named(names) => names.len(),
    }
    .max(1) as f64;
    let mut waves = vec![first.into_iter().map(|c| c.item).collect::<Vec<_>>()];
    let mut rest = rest.into_iter().map(|c| c.item).peekable();
    let mut size = canary_size;
    while rest.peek().is_some() {
        size *= growth;
        let take = (size.ceil() as usize).max(1);
        waves.push(rest.by_ref().take(take).collect());
    }
    waves.retain(|w| !w.is_empty());
    waves
}

#[cfg(test)]
mod tests {
    use super::*;

    fn companies(sizes: &[(&str, Option<u64>)]) -> Vec<Candidate<String>> {
        sizes
            .iter()
            .map(|(name, size)| Candidate {
                item: name.to_string(),
                subdomain: name.to_string(),
                size: *size,
            })
            .collect()
    }

    fn sizes(waves: &[Vec<String>]) -> Vec<usize> {
        waves.iter().map(Vec::len).collect()
    }

    #[test]
    fn the_smallest_go_first_and_waves_grow_by_the_factor() {
        let all: Vec<(String, Option<u64>)> = (0..20)
            .map(|i| (format!("c{i:02}"), Some(1000 - i)))
            .collect();
        let all: Vec<(&str, Option<u64>)> = all.iter().map(|(n, s)| (n.as_str(), *s)).collect();
        let waves = divide(companies(&all), &Canary::Smallest(1), &[], 2.0);
        assert_eq!(sizes(&waves), [1, 2, 4, 8, 5]);
        assert_eq!(waves[0], ["c19"], "the smallest");
        assert_eq!(waves[4].last().unwrap(), "c00", "the biggest last");
        let waves = divide(companies(&all), &Canary::Smallest(3), &[], 1.0);
        assert_eq!(sizes(&waves), [3, 3, 3, 3, 3, 3, 2]);
        let waves = divide(companies(&all), &Canary::Smallest(2), &[], 1.5);
        assert_eq!(sizes(&waves), [2, 3, 5, 7, 3]);
    }

    #[test]
    fn named_canaries_go_first_whatever_their_size_and_unknown_sizes_last() {
        let all = companies(&[
            ("big", Some(900)),
            ("small", Some(10)),
            ("mystery", None),
            ("mid", Some(50)),
            ("tie-b", Some(50)),
        ]);
        let canary = Canary::Named(vec![Subdomain::parse("big").unwrap()]);
        let waves = divide(all, &canary, &[], 2.0);
        assert_eq!(
            waves,
            [vec!["big"], vec!["small", "mid"], vec!["tie-b", "mystery"]]
        );
    }

    #[test]
    fn labelled_companies_lead_the_canary() {
        let all = companies(&[
            ("big", Some(900)),
            ("small", Some(10)),
            ("ours", Some(500)),
            ("mid", Some(50)),
        ]);
        let ours = [Subdomain::parse("ours").unwrap()];
        let waves = divide(all, &Canary::Smallest(1), &ours, 2.0);
        assert_eq!(waves, [vec!["ours", "small"], vec!["mid", "big"]]);
    }

    #[test]
    fn a_canary_already_current_leaves_no_empty_wave() {
        let canary = Canary::Named(vec![Subdomain::parse("gone").unwrap()]);
        let waves = divide(
            companies(&[("a", Some(1)), ("b", Some(2))]),
            &canary,
            &[],
            2.0,
        );
        assert_eq!(waves, [vec!["a", "b"]]);
        assert!(divide(companies(&[]), &Canary::Smallest(1), &[], 2.0).is_empty());
    }

    #[test]
    fn flags_are_checked() {
        assert_eq!("3".parse(), Ok(Canary::Smallest(3)));
        assert_eq!(
            "acme, globex".parse::<Canary>().unwrap().to_string(),
            "acme,globex"
        );
        assert_eq!("0".parse::<Canary>(), Err(WaveError::Canary));
        assert_eq!("acme,,b".parse::<Canary>(), Err(WaveError::Canary));
        assert_eq!("Robert'); DROP".parse::<Canary>(), Err(WaveError::Canary));
        assert_eq!(parse_growth("2"), Ok(2.0));
        assert!(parse_growth("0.5").is_err() && parse_growth("NaN").is_err());
        assert!(parse_growth("inf").is_err());
        assert_eq!(parse_abort_rate("0"), Ok(0.0));
        assert_eq!(parse_abort_rate("1"), Ok(1.0));
        assert!(parse_abort_rate("1.5").is_err() && parse_abort_rate("-0.1").is_err());
    }
}
