//! A board's answer against the host's, bit for bit: class, Q15 confidence, every score, top 3.

use core::fmt;

use runtime_mobile::Classification;

use crate::digits::Expected;

/// The first difference between a board's answer and the host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    Class { got: usize, host: u8 },
    Confidence { got: u16, host: u16 },
    Score { class: usize, got: i8, host: i8 },
    ScoreCount { got: usize },
    Top { rank: usize, got: (usize, u16), host: (u8, u16) },
    TopCount { got: usize },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Mismatch::Class { got, host } => write!(f, "class {got}, host {host}"),
            Mismatch::Confidence { got, host } => write!(f, "confidence (Q15) {got}, host {host}"),
            Mismatch::Score { class, got, host } => write!(f, "score of class {class}: {got}, host {host}"),
            Mismatch::ScoreCount { got } => write!(f, "{got} scores, host {}", crate::N_CLASSES),
            Mismatch::Top { rank, got, host } => {
                write!(f, "top {rank}: class {} at {} (Q15), host class {} at {}", got.0, got.1, host.0, host.1)
            }
            Mismatch::TopCount { got } => write!(f, "{got} ranked classes, host 3"),
        }
    }
}

/// `Ok` when `got` equals the host's answer `host` in every field.
pub fn check(got: &Classification<'_, '_>, host: &Expected) -> Result<(), Mismatch> {
    if got.class != usize::from(host.class) {
        return Err(Mismatch::Class { got: got.class, host: host.class });
    }
    if got.confidence.q15() != host.confidence_q15 {
        return Err(Mismatch::Confidence { got: got.confidence.q15(), host: host.confidence_q15 });
    }
    if got.scores.len() != host.scores.len() {
        return Err(Mismatch::ScoreCount { got: got.scores.len() });
    }
    for (class, (&g, &h)) in got.scores.iter().zip(&host.scores).enumerate() {
        if g != h {
            return Err(Mismatch::Score { class, got: g, host: h });
        }
    }
    if got.top().len() != host.top.len() {
        return Err(Mismatch::TopCount { got: got.top().len() });
    }
    for (rank, (g, &h)) in got.top().iter().zip(&host.top).enumerate() {
        if g.class != usize::from(h.0) || g.confidence.q15() != h.1 {
            return Err(Mismatch::Top { rank: rank + 1, got: (g.class, g.confidence.q15()), host: h });
        }
    }
    Ok(())
}
