"""VQ-BeT: behaviour generation with latent actions (residual-VQ codes plus an offset).

Lee et al., "Behavior Generation with Latent Actions", ICML 2024. Behavior Transformers (Shafiullah
et al. 2022) model multimodal actions as a choice among discrete bins plus a continuous offset;
VQ-BeT learns the bins: a residual VQ-VAE turns each action chunk into a few codes, coarse to
fine, and a causal transformer over the observation history predicts those codes (a categorical
per codebook, so distinct behaviours stay distinct) and an offset that restores the detail
quantisation loses.

Each of the last P+1 observation tokens (P = past_horizon) stands for the K = Ta - P actions
from its own step on, as in the paper, where every position of the GPT predicts its chunk: one
window trains the prior P+1 times. `predict_chunk` returns the past tokens' first actions, then
the current token's K actions, so the chunk keeps the usual (B, Ta, A) layout.

Two phases, as in the paper, inside imitari's single training loop:
1. the first `vqvae_steps` updates train the VQ-VAE alone (MLP encoder of the normalised
   K-action chunk, the shared `ResidualVQ`, MLP decoder; reconstruction + codebook + commitment);
2. then the VQ-VAE is frozen (its codes of the data are targets, computed without gradients)
   and the prior trains: a (focal) classification loss on the primary code, and on each finer
   code given the true coarser ones, plus the squared error of decoded chunk + offset. As in the
   authors' code, the offset is learnt for codes *drawn from the prior*, not the true ones, so it
   corrects the codes the policy will actually pick; it sees the decoded chunk (not a one-hot of
   the codes), so a near-miss code gets a near-miss correction. On builtin/reach (100 demos,
   1500 updates at batch 64, 50 held-out seeds) these two choices cut the held-out error of
   chunks from drawn codes from 6-8x that of chunks from the true codes to about 1.05x, and
   raised success from 0.84-0.92 (true-code offsets from a one-hot; 0.62 after 3000 updates)
   to 0.96-1.00 over three training seeds (1.00 after 3000 updates).
The phases are declared (`training_phases`) and the learner picks one per update from its step
(`imitari.policies.phases`), so a resumed run continues in the right phase. `vqvae_steps` is a count, not a fraction of the run, because
the policy never learns the run's length (a CPU-time budget fixes it only as it ends): the
VQ-VAE's reconstruction levels off within ~300 updates at batch 64-256, so 500 costs a third of
a 1500-update test and a few percent of a budgeted run, which does thousands.

At inference the codes are sampled (Gumbel-max on the policy's seeded per-env generators), the
paper's choice: a categorical over codes is what lets VQ-BeT reproduce several behaviours, and
argmax would always take the most frequent one. `sample_actions=False` takes the most likely
codes (the same success on unimodal builtin/reach).

Size: the paper uses an observation window of 10, chunks of about 5 actions, 2 codebooks of
16 codes and a 6-layer, 120-wide GPT. The CPU-sized default is a window of 4, K = 5 (chunks of
8 rows: 3 past, 5 from the current step, 3 executed), 2 x 16 codes in a 32-wide latent, a
2-layer, 64-wide causal transformer, 128-wide MLPs: 186,856 parameters for a 39-D state and a
4-D action.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from imitari.config import ConfigError
from imitari.policies.base import Generators, Policy, PolicyConfig, Shapes
from imitari.policies.nn.heads import categorical_from_normal
from imitari.policies.nn.mlp import MLP
from imitari.policies.nn.rvq import ResidualVQ
from imitari.policies.nn.transformer import LearnedPositions, TransformerEncoder, TransformerSize
from imitari.policies.phases import Phase, phase_at


@dataclass
class VQBeTConfig(PolicyConfig):
    """VQ-BeT: the VQ-VAE over chunks, the causal transformer prior and the two training phases."""

    obs_horizon: int = 4
    """To: observations the transformer reads (paper: 10)."""
    action_horizon: int = 8
    """Ta: actions per chunk, from step t - past_horizon; the VQ-VAE tokenises sub-chunks of
    Ta - past_horizon actions (paper: about 5), one starting at each of the last past_horizon+1 steps."""
    exec_horizon: int = 3
    """Actions executed from each chunk before the next prediction."""
    latent_dim: int = 32
    """Width of the VQ-VAE latent that the codebooks quantise."""
    levels: int = 2
    """Residual codebooks (paper: 2, a primary and a secondary code)."""
    codebook_size: int = 16
    """Codes per codebook (paper: 16)."""
    vae_hidden: tuple[int, ...] = (128, 128)
    """Hidden widths of the VQ-VAE's encoder and decoder MLPs."""
    vqvae_steps: int = 500
    """Training updates spent on the VQ-VAE before it is frozen and the prior trains (a count:
    the policy does not know the run's length; the VQ-VAE levels off within ~300)."""
    dim: int = 64
    """Transformer token width (paper: 120)."""
    depth: int = 2
    """Transformer layers (paper: 6)."""
    heads: int = 4
    """Attention heads (must divide dim)."""
    dropout: float = 0.1
    """Dropout in the transformer."""
    head_hidden: int = 128
    """Hidden width of the code and offset heads."""
    secondary_weight: float = 0.5
    """Weight of the finer codes' classification loss relative to the primary code's."""
    focal_gamma: float = 2.0
    """Focal-loss exponent of the code losses (the paper's 2; 0 is cross-entropy)."""
    offset_weight: float = 10.0
    """Weight of the chunk error after the offset (normalised units) against the code losses."""
    sample_actions: bool = True
    """Sample the codes (the paper) rather than take the most likely ones; training always samples
    the codes the offset learns to correct."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.vae_hidden = tuple(self.vae_hidden)
        if self.latent_dim < 1 or self.levels < 1 or self.codebook_size < 2 or self.head_hidden < 1:
            raise ConfigError(f"need latent_dim >= 1, levels >= 1, codebook_size >= 2, head_hidden >= 1 (got "
                              f"{self.latent_dim}, {self.levels}, {self.codebook_size}, {self.head_hidden})")
        if self.vqvae_steps < 0:
            raise ConfigError(f"vqvae_steps must be >= 0 (got {self.vqvae_steps})")
        if min(self.secondary_weight, self.offset_weight, self.focal_gamma) < 0:
            raise ConfigError("secondary_weight, offset_weight and focal_gamma must be >= 0")
        if self.ptp_candidates > 1 and not self.sample_actions:
            raise ConfigError("ptp_candidates > 1 needs sample_actions: the most likely codes are the same every draw")
        self.size  # TransformerSize raises ConfigError on a bad width, depth, heads or dropout

    @property
    def size(self) -> TransformerSize:
        return TransformerSize(dim=self.dim, depth=self.depth, heads=self.heads, dropout=self.dropout)

    @property
    def token_chunk(self) -> int:
        """K: actions each token's code stands for (a chunk from the token's step on)."""
        return self.action_horizon - self.past_rows


class VQBeTPolicy(Policy):
    """VQ-BeT (Lee et al. 2024): residual-VQ codes of action chunks predicted by a causal transformer, plus an offset."""

    train_defaults: ClassVar[Mapping[str, Any]] = {"lr": 1e-3}
    config: VQBeTConfig
    retired_buffers: ClassVar[tuple[str, ...]] = ("updates",)
    """The phase counter that checkpoints before the learner seam saved."""

    def __init__(self, config: VQBeTConfig, *, shapes: Shapes, stats: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__(config, shapes=shapes, stats=stats)
        chunk = config.token_chunk * self.action_dim
        self.vq_encoder = MLP(chunk, config.latent_dim, hidden=config.vae_hidden, activation="gelu")
        self.rvq = ResidualVQ(config.latent_dim, levels=config.levels, codebook_size=config.codebook_size)
        self.vq_decoder = MLP(config.latent_dim, chunk, hidden=config.vae_hidden, activation="gelu")
        self.embed = nn.Linear(self.obs_encoder.step_dim, config.dim)
        self.positions = LearnedPositions(config.obs_horizon, config.dim)
        self.transformer = TransformerEncoder(config.size, causal=True)
        k, hidden = config.codebook_size, (config.head_hidden,)
        self.code_heads = nn.ModuleList(
            MLP(config.dim + level * k, k, hidden=hidden, activation="gelu") for level in range(config.levels)
        )
        self.offset_head = MLP(config.dim + chunk, chunk, hidden=hidden, activation="gelu")

    def _tokens(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Features `(B, P+1, dim)` of the window's last P+1 steps, each having seen only its past."""
        steps = self.obs_encoder.encode_steps(self.normalize_obs(obs))
        tokens = self.transformer(self.positions(self.embed(steps)))
        return tokens[:, tokens.shape[1] - 1 - self.config.past_rows :]

    def _sub_chunks(self, actions: torch.Tensor) -> torch.Tensor:
        """Chunks `(B, Ta, A)` -> each of the last P+1 tokens' K-action chunk, flat `(B, P+1, K * A)`."""
        return actions.unfold(1, self.config.token_chunk, 1).transpose(2, 3).flatten(start_dim=2)

    def _one_hot(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes `(..., L)` -> concatenated one-hots `(..., L * K)`."""
        return F.one_hot(codes, self.config.codebook_size).flatten(start_dim=-2).to(self.dtype)

    def _code_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Focal loss (Lin et al. 2017; cross-entropy when focal_gamma is 0): confident, correct
        codes weigh less, so training dwells on the ambiguous ones."""
        logp = F.log_softmax(logits, dim=-1).gather(-1, target[..., None]).squeeze(-1)
        return -(((1 - logp.exp()) ** self.config.focal_gamma) * logp).mean()

    def _chunk(self, h: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Flat normalised chunks: the frozen decoder's chunk of `codes`, plus the offset predicted
        from the token `h` and that decoded chunk."""
        with torch.no_grad():
            decoded = self.vq_decoder(self.rvq.decode(codes))
        return decoded + self.offset_head(torch.cat([h, decoded], dim=-1))

    def _draw_codes(self, h: torch.Tensor, noise: Callable[[torch.Size], torch.Tensor] | None) -> torch.Tensor:
        """Codes `(..., L)` for tokens `h`, coarse to fine, each level given the levels drawn before
        it: sampled with standard-normal `noise(shape)` (Gumbel-max), or the most likely if None."""
        codes = torch.zeros((*h.shape[:-1], 0), dtype=torch.long, device=h.device)
        for head in self.code_heads:
            logits = head(torch.cat([h, self._one_hot(codes)], dim=-1))
            code = logits.argmax(dim=-1) if noise is None else categorical_from_normal(logits, noise(logits.shape))
            codes = torch.cat([codes, code.to(h.device)[..., None]], dim=-1)
        return codes

    def training_phases(self) -> tuple[Phase, ...]:
        """The VQ-VAE for `vqvae_steps` updates, then the prior."""
        return (Phase("vqvae", self.config.vqvae_steps), Phase("prior"))

    def loss(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of the phase training starts in (the prior's when `vqvae_steps` is 0)."""
        return self.phase_loss(batch, phase_at(self.training_phases(), 0))

    def phase_loss(self, batch: Mapping[str, Any], phase: str) -> tuple[torch.Tensor, dict[str, float]]:
        """"vqvae": the VQ-VAE's loss; "prior": the prior's. Both phases log the VQ-VAE's `recon`
        and `latent_error` (the prior's phase adds its own), so a logging window that spans the
        switch averages metrics present in every step."""
        if phase not in ("vqvae", "prior"):
            raise ValueError(f"VQ-BeT has no training phase '{phase}' (phases: vqvae, prior)")
        target = self._sub_chunks(self.normalize_actions(batch["action"]))
        flat = target.flatten(end_dim=1)
        if phase == "vqvae":
            latent = self.vq_encoder(flat)
            quantized, _, vq_loss = self.rvq(latent)
            recon = F.mse_loss(self.vq_decoder(quantized), flat)
            metrics = {"recon": recon.item(), "latent_error": F.mse_loss(quantized.detach(), latent.detach()).item()}
            return recon + vq_loss, metrics
        with torch.no_grad():  # the frozen VQ-VAE labels the data
            latent = self.vq_encoder(flat)
            codes = self.rvq.codes(latent)
            quantized = self.rvq.decode(codes)
            metrics = {"recon": F.mse_loss(self.vq_decoder(quantized), flat).item(),
                       "latent_error": F.mse_loss(quantized, latent).item()}
            codes = codes.unflatten(0, target.shape[:2])
        h = self._tokens(batch["obs"])
        losses = []
        for level, head in enumerate(self.code_heads):  # each level given the true coarser codes
            logits = head(torch.cat([h, self._one_hot(codes[..., :level])], dim=-1))
            losses.append(self._code_loss(logits, codes[..., level]))
        code_loss = losses[0] + self.config.secondary_weight * sum(losses[1:], torch.zeros_like(losses[0]))
        with torch.no_grad():  # the offset learns to correct the codes the prior actually draws
            drawn = self._draw_codes(h, lambda shape: torch.randn(shape, device=h.device))
        chunk_error = F.mse_loss(self._chunk(h, drawn), target)
        loss = code_loss + self.config.offset_weight * chunk_error
        return loss, {**metrics, "primary_code": losses[0].item(), "chunk_mse": chunk_error.item()}

    def predict_chunk(self, obs: Mapping[str, torch.Tensor], *, generator: Generators = None) -> torch.Tensor:
        h = self._tokens(obs)
        gen = self.noise_generator(generator) if self.config.sample_actions else None
        codes = self._draw_codes(h, None if gen is None else lambda shape: self.sample_noise(shape, gen))
        chunks = self._chunk(h, codes).unflatten(-1, (self.config.token_chunk, self.action_dim))
        # rows before the current step: each past token's first action; then the current token's chunk
        return self.unnormalize_actions(torch.cat([chunks[:, :-1, 0], chunks[:, -1]], dim=1))
