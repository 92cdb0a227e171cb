//! Dense layers.

use super::conv::matvec_for;
use super::{BROKEN, LayerTensors, fold_zero_point, requant_params};
use crate::error::Error;
use crate::kernels::Kernels;
use crate::plan::Stage;

/// Dense + requant (+ relu); `folded` is the zero-point-folded bias when a session prepared it.
#[allow(clippy::too_many_arguments)]
pub(super) fn dense(
    k: &Kernels,
    t: &LayerTensors<'_>,
    st: &Stage,
    relu: bool,
    folded: Option<&[i32]>,
    x: &[i8],
    ints: &mut [i32],
    out: &mut [i8],
) -> Result<(), Error> {
    let n = out.len();
    // The plan's [`Stage::scratch`]: accumulators, then zero-point corrections (`n` each).
    if t.weight.len() != n * x.len() || folded.is_some_and(|f| f.len() != n) || ints.len() < 2 * n {
        return Err(BROKEN);
    }
    let (acc, corr) = ints.split_at_mut(n);
    let corr = corr.get_mut(..n).ok_or(BROKEN)?;
    let corr = match folded {
        Some(f) => f,
        None => {
            fold_zero_point(k, t, x.len(), st.in_zp, corr);
            &*corr
        }
    };
    matvec_for(k, t)(t.weight, x, acc);
    for (a, &c) in acc.iter_mut().zip(corr) {
        *a = a.wrapping_add(c);
    }
    (k.requantize_i32)(acc, &requant_params(t, st, relu));
    for (q, &a) in out.iter_mut().zip(&*acc) {
        *q = a as i8;
    }
    Ok(())
}
