//! Carlini–Wagner L2 (Carlini & Wagner, 2017), as torchattacks implements it: Adam on `w` with
//! `x_adv = (tanh(w) + 1) / 2`, minimising `‖x_adv − x‖² + c · f(x_adv)`, keeping the smallest successful
//! perturbation; optionally bounded in L2 and with a binary search over `c`.

use burn::prelude::*;
use cadet_core::Progress;
use cadet_model::Classifier;
use ndarray::ArrayView4;
use serde::{Deserialize, Serialize};

use crate::common::{l2_norms, run_batches};
use crate::{Attack, AttackOutput, Error, Goal, Result};

/// Carlini–Wagner L2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CarliniWagner {
    /// Initial weight `c > 0` of the classification term.
    pub c: f32,
    /// Confidence margin `κ ≥ 0`.
    pub kappa: f32,
    /// Adam learning rate.
    pub learning_rate: f32,
    /// Adam steps per value of `c` (≥ 1).
    pub steps: usize,
    /// Optional bound on `‖x_adv − x‖₂`: candidates are projected onto this ball before they are judged
    /// (the paper's δ = 0.10).
    pub max_l2: Option<f32>,
    /// Rounds of binary search over `c` per image (0: `c` fixed).
    pub binary_search_steps: usize,
    /// Images per batch.
    pub batch_size: usize,
}

impl CarliniWagner {
    /// The paper's setting: c = 0.1, κ = 0, learning rate 0.03, 50 steps, L2 bound δ = 0.10, no search.
    pub fn paper() -> Self {
        Self {
            c: 0.1,
            kappa: 0.0,
            learning_rate: 0.03,
            steps: 50,
            max_l2: Some(0.10),
            binary_search_steps: 0,
            batch_size: 128,
        }
    }

    fn check(&self) -> Result<()> {
        let bad = |name, reason: String| {
            Err(Error::Core(cadet_core::Error::InvalidParameter {
                name,
                reason,
            }))
        };
        if self.c.is_nan() || self.c <= 0.0 || self.c.is_infinite() {
            return bad("c", format!("must be > 0, got {}", self.c));
        }
        if self.kappa.is_nan()
            || self.kappa < 0.0
            || self.learning_rate.is_nan()
            || self.learning_rate <= 0.0
        {
            return bad(
                "kappa/learning_rate",
                format!(
                    "κ ≥ 0 and lr > 0, got {} and {}",
                    self.kappa, self.learning_rate
                ),
            );
        }
        if self.steps == 0 {
            return bad("steps", "at least 1".into());
        }
        if self.max_l2.is_some_and(|b| b.is_nan() || b < 0.0) {
            return bad("max_l2", format!("must be ≥ 0, got {:?}", self.max_l2));
        }
        Ok(())
    }

    fn bound(&self, candidate: Tensor<4>, x: &Tensor<4>) -> Tensor<4> {
        match self.max_l2 {
            None => candidate,
            Some(b) => {
                let delta = candidate - x.clone();
                let factor = (l2_norms(delta.clone()).clamp_min(1e-12).recip() * b).clamp_max(1.0);
                (x.clone() + delta * factor).clamp(0.0, 1.0)
            }
        }
    }
}

impl Attack for CarliniWagner {
    fn name(&self) -> String {
        let bound = match self.max_l2 {
            Some(d) => format!(", ‖δ‖₂ ≤ {d}"),
            None => String::new(),
        };
        format!(
            "CW-L2 (c = {}, κ = {}, lr {}, {} steps{bound})",
            self.c, self.kappa, self.learning_rate, self.steps
        )
    }

    fn attack(
        &self,
        clf: &dyn Classifier,
        images: ArrayView4<'_, f32>,
        labels: &[u32],
        goal: &Goal,
        progress: &dyn Progress,
    ) -> Result<AttackOutput> {
        self.check()?;
        run_batches(
            clf,
            images,
            labels,
            goal,
            self.batch_size,
            progress,
            &self.name(),
            |x, y, targeted, _| {
                let [n, _, _, _] = x.dims();
                let device = x.device();
                let classes = clf.logits(x.clone().detach()).dims()[1];
                let one_hot = y
                    .clone()
                    .one_hot::<3>(classes)
                    .float()
                    .reshape([n, classes]);
                let w0 = (x.clone() * 2.0 - 1.0)
                    .clamp(-1.0 + 1e-6, 1.0 - 1e-6)
                    .atanh();
                let mut c = Tensor::<2>::full([n, 1], self.c, &device);
                let (mut lo, mut hi) = (
                    Tensor::<2>::zeros([n, 1], &device),
                    Tensor::<2>::full([n, 1], 1e10, &device),
                );
                let mut best = x.clone();
                let mut best_l2 = Tensor::<2>::full([n, 1], f32::INFINITY, &device);
                let mut last = x.clone();
                for _round in 0..self.binary_search_steps.max(1) {
                    let (mut w, mut m, mut v) = (w0.clone(), w0.zeros_like(), w0.zeros_like());
                    let mut succeeded = Tensor::<2>::zeros([n, 1], &device);
                    for t in 1..=self.steps {
                        let wg = w.clone().detach().require_grad();
                        let adv = (wg.clone().tanh() + 1.0) / 2.0;
                        let l2 = (adv.clone() - x.clone())
                            .powf_scalar(2.0)
                            .sum_dim(3)
                            .sum_dim(2)
                            .sum_dim(1)
                            .reshape([n, 1]);
                        let z = clf.logits(adv);
                        let real = (z.clone() * one_hot.clone()).sum_dim(1);
                        let other = (z - one_hot.clone() * 1e4).max_dim(1);
                        // Untargeted: push the true class below the best other; targeted: pull the target above.
                        let f = if targeted { other - real } else { real - other }
                            .clamp_min(-self.kappa);
                        let loss = (l2 + f * c.clone()).sum();
                        let grads = loss.backward();
                        let g = Tensor::from_inner(
                            wg.grad(&grads)
                                .ok_or_else(|| Error::Backend("no gradient for w".into()))?,
                        );
                        // Adam (β = 0.9, 0.999, ε = 1e-8), as torch.optim.Adam.
                        m = m * 0.9 + g.clone() * 0.1;
                        v = v * 0.999 + g.powf_scalar(2.0) * 0.001;
                        let (bc1, bc2) =
                            (1.0 - 0.9f32.powi(t as i32), 1.0 - 0.999f32.powi(t as i32));
                        w = w.detach()
                            - (m.clone() / bc1) / ((v.clone() / bc2).sqrt() + 1e-8)
                                * self.learning_rate;
                        // Judge the (bounded) candidate and keep the smallest successful one per image.
                        let candidate = self.bound((w.clone().tanh() + 1.0) / 2.0, &x);
                        let pred = clf.logits(candidate.clone().detach()).argmax(1);
                        let hit = if targeted {
                            pred.equal(y.clone())
                        } else {
                            pred.not_equal(y.clone())
                        };
                        let cand_l2 = l2_norms(candidate.clone() - x.clone()).reshape([n, 1]);
                        let better = hit.clone().bool_and(cand_l2.clone().lower(best_l2.clone()));
                        best_l2 = best_l2.mask_where(better.clone(), cand_l2);
                        best = best.mask_where(
                            better.clone().reshape([n, 1, 1, 1]).expand(x.dims()),
                            candidate.clone(),
                        );
                        succeeded = succeeded.mask_fill(hit, 1.0);
                        last = candidate;
                    }
                    // Binary search on c: a success lowers the upper end, a failure raises the lower end; with no
                    // success yet (upper end unset) c grows tenfold.
                    let won = succeeded.greater_elem(0.5);
                    let lost = won.clone().bool_not();
                    hi = hi.clone().mask_where(won, c.clone().min_pair(hi));
                    lo = lo.clone().mask_where(lost.clone(), c.clone().max_pair(lo));
                    let grow = lost.bool_and(hi.clone().greater_equal_elem(1e9));
                    c = ((lo.clone() + hi.clone()) / 2.0).mask_where(grow, c * 10.0);
                }
                // Images never attacked successfully return their last candidate (reported as failures).
                let never = best_l2
                    .clone()
                    .is_inf()
                    .reshape([n, 1, 1, 1])
                    .expand(x.dims());
                Ok(best.mask_where(never, last))
            },
        )
    }
}
