//! A model prepared for many inferences with one kernel table: what a phone app keeps while its
//! camera runs. Preparing packs every conv layer's weights once into the caller's arena
//! (channel-innermost quads, for tables with a packed conv path: AVX-512 VNNI, AVX2), so each
//! inference skips both the repacking and the im2col copies; dense layers get their
//! zero-point-folded bias computed once. Without such a table, or with an
//! arena too small for the packed weights, a session runs exactly like [`Model::run_with`].
//! Results are identical either way, bit for bit.

use crate::bytes::as_i8_mut;
use crate::engine::{self, PackedLayer, fold_zero_point, pack_conv};
use crate::error::Error;

/// A session's packing found the plan and the model out of step: a bug, never bad input.
const PACK_BROKEN: Error = Error::Internal("session: the packed-weight plan does not fit the model");
use crate::format::{MAX_LAYERS, Op};
use crate::kernels::Kernels;
use crate::model::{Model, Prediction};
use crate::plan::{PACKED_ALIGN, StageOp};

/// A [`Model`] bound to a kernel table and an arena; see the module docs.
#[derive(Debug)]
pub struct Session<'s, 'a> {
    model: &'s Model<'a>,
    kernels: &'s Kernels,
    packed: [Option<PackedLayer<'s>>; MAX_LAYERS],
    work: &'s mut [u8],
}

impl<'a> Model<'a> {
    /// Arena length with which [`Model::session`] packs the conv weights and every stage can
    /// take its fastest path (the packed weights plus working memory; >= [`Model::arena_bytes`]).
    pub fn session_arena_bytes(&self) -> usize {
        self.plan().packed_bytes.saturating_add(self.plan().session_work_bytes)
    }

    /// Prepares `kernels` and `arena` for repeated inference. With a table that has
    /// `conv_packed` and an arena of at least [`Model::session_arena_bytes`], the conv weights are
    /// packed into the arena now; otherwise the session runs like [`Model::run_with`], which
    /// needs [`Model::arena_bytes`] (less is refused with [`Error::ArenaTooSmall`]).
    pub fn session<'s>(&'s self, kernels: &'s Kernels, arena: &'s mut [u8]) -> Result<Session<'s, 'a>, Error> {
        let mut packed = [None; MAX_LAYERS];
        let plan = self.plan();
        if !kernels.conv_packed || arena.len() < self.session_arena_bytes() {
            if arena.len() < plan.arena_bytes {
                return Err(Error::ArenaTooSmall { needed: plan.arena_bytes, got: arena.len() });
            }
            return Ok(Session { model: self, kernels, packed, work: arena });
        }
        let (store, work) = arena.split_at_mut(plan.packed_bytes);
        // Each conv/dense stage's region of the store, where the plan put it (in stage order).
        let mut rest = store;
        let mut at = 0;
        for st in plan.stages.get(..plan.n_stages).unwrap_or(&[]) {
            let (StageOp::Conv { layer, .. } | StageOp::Dense { layer, .. }) = st.op else { continue };
            let (Some(spec), Some(t)) = (self.layers().get(layer), self.tensors().get(layer)) else {
                return Err(PACK_BROKEN);
            };
            let skip = (st.packed_off as usize).checked_sub(at).ok_or(PACK_BROKEN)?;
            let size = st.packed.size(PACKED_ALIGN).map_err(|_| PACK_BROKEN)?;
            let (_, tail) = core::mem::take(&mut rest).split_at_mut_checked(skip).ok_or(PACK_BROKEN)?;
            let (region, tail) = tail.split_at_mut_checked(size).ok_or(PACK_BROKEN)?;
            (rest, at) = (tail, at + skip + size);
            // Conv: the packed weights and the folded bias; dense: the folded bias.
            let (wp, bias) = st.packed.carve(region, PACKED_ALIGN).ok_or(PACK_BROKEN)?;
            let wp = as_i8_mut(wp);
            *packed.get_mut(layer).ok_or(PACK_BROKEN)? = Some(match spec.op {
                Op::Conv2d { .. } => {
                    pack_conv(kernels, spec, t, st.in_zp, wp, bias)?;
                    PackedLayer { wp, bias }
                }
                Op::Dense { out_features, .. } => {
                    let k_len = t.weight.len() / out_features.max(1);
                    fold_zero_point(kernels, t, k_len, st.in_zp, bias);
                    PackedLayer { wp: &[], bias }
                }
                _ => return Err(PACK_BROKEN),
            });
        }
        Ok(Session { model: self, kernels, packed, work })
    }
}

impl<'a> Session<'_, 'a> {
    /// Runs inference on `input` (as [`Model::run`]); the scores borrow the session's arena.
    pub fn run(&mut self, input: &[i8]) -> Result<Prediction<'_>, Error> {
        let m = self.model;
        if input.len() != m.input_len() {
            return Err(Error::InputSize { expected: m.input_len(), got: input.len() });
        }
        let scores = engine::run(m.plan(), m.layers(), m.tensors(), &self.packed, self.kernels, input, self.work)?;
        Ok(Prediction::from_scores(scores))
    }

    pub fn model(&self) -> &Model<'a> {
        self.model
    }

    pub fn kernels(&self) -> &Kernels {
        self.kernels
    }

    /// Whether the weights were prepared (a table with the packed path and a large enough
    /// arena).
    pub fn is_packed(&self) -> bool {
        self.packed.iter().any(Option::is_some)
    }
}
