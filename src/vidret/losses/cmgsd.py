"""CMGSD: the hard-margin hinge plus adaptive-margin hinges from supervision experts.

For each query i and negative j (METHOD.md section 4, paper eqs. 27-31):

    total_v(i, j) = l_v(i, j; alpha)
                  + lambda     * [ l_v(i, j; M_v^dyn) + l_v(i, j; M_t^dyn) ]
                  + (1-lambda) * [ sum_e l_v(i, j; M_v,e^sta) + l_v(i, j; M_t^sta) ]

and `total_t` likewise with `l_t`; then the reducer over j (mean during the warm-up,
hardest negative after it), the mean over i, and L = L_v + L_t.

Experts and how they combine:
* static text: a Sentence-BERT vector of each caption (`ctx.static["text"]`);
* static video: each visual expert's mean-pooled pretrained features
  (`ctx.static["video:<expert>"]`), one margin matrix each, hinge terms summed;
* dynamic text / video: the model's own caption / video embeddings of the batch
  (detached). For a multi-expert model the distance is 1 minus the *unweighted* mean,
  over the experts both videos have, of the per-expert cosine (not the caption-weighted
  similarity, which is not defined between two videos).

Ablation switches drop terms: text experts, video experts, static, dynamic (and mining
through the reducer). With `static` off, the dynamic terms keep the lambda weight; with
`dynamic` off, lambda is held at 0 so the static terms keep full weight.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vidret.losses.adaptive_margin import cosine_distances, rescale_margins
from vidret.losses.base import LossContext, LossOutput
from vidret.losses.reducers import Reducer, mining_share
from vidret.losses.relevance import caption_relevance
from vidret.losses.triplet import TripletLoss, negatives_mask, positive_gaps
from vidret.models.types import Embeddings


def lambda_at(epoch: float, start: float, end: float) -> float:
    """0 before `start`; 0.1 at `start` growing exponentially to 1.0 at `end`; then 1.0.

    The paper's 50-epoch run uses start=20, end=50: lambda(e) = 0.1 * 10 ** ((e-20)/30).
    """
    if epoch < start:
        return 0.0
    if epoch >= end or end <= start:
        return 1.0
    return 0.1 * 10 ** ((epoch - start) / (end - start))


def adaptive_context(
    epoch: float,
    text: Tensor | None = None,
    video: Tensor | None = None,
    video_present: Tensor | None = None,
    static_text: Tensor | None = None,
    static_video: dict[str, Tensor] | None = None,
) -> LossContext:
    """A `LossContext` from plain tensors, for models that are not vidret's own.

    `text` / `video`: the model's caption / video embeddings of the batch, `[B, d]` or
    `[B, E, d]` per expert (the dynamic experts); `static_text`: `[B, D]` fixed caption
    vectors (e.g. Sentence-BERT); `static_video`: name -> `[B, D_e]` fixed video vectors.
    """

    def wrap(v: Tensor | None, present: Tensor | None) -> Embeddings | None:
        if v is None:
            return None
        v = v if v.dim() == 3 else v[:, None]
        weights = present.float() if present is not None else v.new_ones(v.shape[:2])
        return Embeddings(v, weights)

    static = {f"video:{k}": t for k, t in (static_video or {}).items()}
    if static_text is not None:
        static["text"] = static_text
    return LossContext(
        epoch=epoch, text=wrap(text, None), video=wrap(video, video_present), static=static
    )


class CMGSDLoss(TripletLoss):
    needs_static = True

    def __init__(
        self,
        alpha: float = 0.05,
        beta: float = 0.04,
        reducer: Reducer | None = None,
        warmup_epochs: float = 1.0,
        lambda_start: float = 20.0,
        lambda_end: float = 50.0,
        text_experts: bool = True,
        video_experts: bool = True,
        static: bool = True,
        dynamic: bool = True,
        static_text: str = "caption",
    ):
        super().__init__(alpha, reducer=reducer, warmup_epochs=warmup_epochs)
        self.alpha, self.beta = alpha, beta
        self.lambda_start, self.lambda_end = lambda_start, lambda_end
        self.text_experts, self.video_experts = text_experts, video_experts
        self.static, self.dynamic = static, dynamic
        if static_text not in ("caption", "video_captions"):
            raise ValueError(f"static_text {static_text!r}: caption or video_captions")
        self.static_text = static_text
        # the video_captions expert reads the batch videos' captions (vidret.losses.relevance)
        self.needs_relevance = static and text_experts and static_text == "video_captions"

    def lambda_(self, epoch: float) -> float:
        if not self.dynamic:
            return 0.0
        return lambda_at(epoch, self.lambda_start, self.lambda_end)

    def margins(
        self, ctx: LossContext
    ) -> tuple[list[tuple[str, Tensor]], list[tuple[str, Tensor]]]:
        """`(dynamic, static)` lists of named margin matrices for this batch."""
        experts: list[tuple[str, Tensor, Tensor | None]] = []  # name, vectors, presence
        if self.dynamic:
            if self.video_experts and ctx.video is not None:
                experts.append(("dyn_video", ctx.video.vectors, ctx.video.weights > 0))
            if self.text_experts and ctx.text is not None:
                experts.append(("dyn_text", ctx.text.vectors, None))
        text_from_videos = self.needs_relevance  # the static text expert from relevance
        if self.static:
            for name, vectors in sorted(ctx.static.items()):
                is_video = name.startswith("video:")
                is_text = name == "text" and self.text_experts and not text_from_videos
                if (is_video and self.video_experts) or is_text:
                    experts.append((f"sta_{name}", vectors, None))
        distances = [cosine_distances(v.detach(), p) for _, v, p in experts]
        if text_from_videos:
            # 1 - the best match among each video's captions; symmetrized, since one
            # margin matrix serves both directions (caption i vs video j, video i vs caption j)
            relevance = caption_relevance(ctx)
            experts.append(("sta_text", relevance, None))
            distances.append((1.0 - (relevance + relevance.T) / 2, None))
        if not experts:
            return [], []
        B = distances[0][0].shape[0]
        valid = None
        if any(m is not None for _, m in distances):
            ones = torch.ones(B, B, dtype=torch.bool, device=distances[0][0].device)
            valid = torch.stack([ones if m is None else m for _, m in distances])
        # All experts' margins in one batched rescale: [K, B, B].
        M = rescale_margins(torch.stack([d for d, _ in distances]), self.alpha, self.beta, valid)
        named = [(name, M[k]) for k, (name, _, _) in enumerate(experts)]
        return (
            [x for x in named if x[0].startswith("dyn_")],
            [x for x in named if x[0].startswith("sta_")],
        )

    def mixed_margins(self, sims: Tensor, ctx: LossContext) -> tuple[Tensor, float]:
        """One margin per pair for the losses that take a margin inside a softmax
        (adaptive InfoNCE, adaptive unified): `lambda * mean(dynamic experts' margins) +
        (1 - lambda) * mean(static ones)`, zero on the positives; alpha everywhere when no
        expert is on. Returns it with lambda."""
        lam = self.lambda_(ctx.epoch)
        dynamic, static = self.margins(ctx)
        M = torch.zeros_like(sims)
        for weight, group in ((lam, dynamic), (1.0 - lam, static)):
            if weight and group:
                M = M + weight * torch.stack([m for _, m in group]).mean(0)
        if not dynamic and not static:
            M = torch.full_like(sims, self.alpha)  # no experts: plain additive margin
        return M * negatives_mask(sims.shape[0], sims.device), lam

    def forward(self, sims: Tensor, ctx: LossContext) -> LossOutput:
        lam = self.lambda_(ctx.epoch)
        dynamic, static = self.margins(ctx)
        # Every hinge term at once: margins stacked to [K, B, B] with one weight each
        # (1 for the hard margin, lambda for dynamic, 1 - lambda for static experts).
        groups = [
            ("hard", 1.0, [torch.full_like(sims, self.alpha)]),
            ("dynamic", lam, [M for _, M in dynamic]),
            ("static", 1.0 - lam, [M for _, M in static]),
        ]
        margins, weights, owner = [], [], []
        for key, weight, group in groups:
            if weight == 0.0 or not group:
                continue
            margins += group
            weights += [weight] * len(group)
            owner += [key] * len(group)
        M = torch.stack(margins)
        w = torch.tensor(weights, dtype=sims.dtype, device=sims.device)[:, None, None]
        positive = sims.diagonal()[None, :, None]
        hinge_v = (sims[None] - positive + M).clamp_min(0.0)  # [K, i, j]: caption i, video j
        hinge_t = (sims.T[None] - positive + M).clamp_min(0.0)  # [K, i, j]: video i, caption j
        total_v, total_t = (w * hinge_v).sum(0), (w * hinge_t).sum(0)

        reduce = self.reducer_at(ctx.epoch)
        negatives = negatives_mask(sims.shape[0], sims.device)
        gaps_v, gaps_t = positive_gaps(sims)
        loss_v = reduce(total_v, negatives, gaps_v).mean()
        loss_t = reduce(total_t, negatives, gaps_t).mean()
        total = loss_v + loss_t
        # For logs: each group's weighted hinges averaged over all pairs (mining-independent).
        with torch.no_grad():
            per_term = ((w * (hinge_v + hinge_t)) * negatives).sum((1, 2)) / negatives.sum()
        terms = {"loss_hard": 0.0, "loss_dynamic": 0.0, "loss_static": 0.0}
        for key, value in zip(owner, per_term.tolist(), strict=True):
            terms[f"loss_{key}"] += value
        terms.update(
            loss=total.item(),
            loss_v=loss_v.item(),
            loss_t=loss_t.item(),
            lambda_=lam,
            mining=mining_share(reduce, negatives, gaps_v),
        )
        return LossOutput(total, terms)
