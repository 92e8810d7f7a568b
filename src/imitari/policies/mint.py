"""MINT: multi-scale frequency-space action tokens, generated coarse to fine.

"Mimic Intent, Not Just Trajectories" (MINT, 2026) tokenises an action chunk by a spectral
decomposition: the coarsest token holds the chunk's low-frequency global shape (the *intent*),
finer tokens add higher-frequency execution detail. A policy that generates the tokens coarse to
fine (next-scale autoregression) reasons from intent to execution, and injecting the intent
token of a demonstration instead of generating it transfers a behaviour in one shot.

Tokeniser (`FrequencyTokenizer`): the normalised chunk (Ta x A) goes through an orthonormal
DCT-II along time (a fixed matrix). Scale s keeps the lowest `scales[s]` frequencies of the
current residual spectrum, quantises them (flattened, k_s * A numbers) with its own one-level
`ResidualVQ` codebook, and subtracts the code vector, so the next scale sees what is left; the
DCT being orthonormal, this is the same as subtracting the reconstructed chunk in time. The
transform is fixed rather than a learned encoder/decoder: the spectral order of the tokens then
holds by construction, and the quantiser learns only its codebooks. Decoding sums the code
vectors into the spectrum and applies the inverse DCT.

Generator: a causal transformer decoder whose queries are [start, token_0 .. token_{S-2}] (one
token per scale, a learned embedding per scale and code) and whose memory is the observation
window, one token per step; each token query also carries the chunk spectrum reconstructed so
far (as VAR's next-scale inputs do), so finer scales see the continuous estimate they correct.
Position s predicts scale s's code (teacher forcing, cross-entropy). The targets are softened
over the codes near the true one (`target_softness`): with one-hot targets the generator
memorised code assignments and reached 62-80% on builtin/reach, with soft ones 94%.

Training runs in two phases (`training_phases`; the learner picks one from its step, so a
resumed run continues in the right phase): the first `tokenizer_steps` updates train only the codebooks
(VQ losses; codebooks start from data and dead codes are revived, which reassigns codes and
would make the generator chase moving targets), then the tokeniser is frozen and only the
generator trains, on the frozen tokeniser's codes.

Inference: tokens are taken greedily (`temperature` 0) or sampled by Gumbel-max from the
policy's per-env seeded generators; the decoded chunk is unnormalised. `act(obs,
intent_from=demo)` takes the intent token of each env from a demonstration's action array (T, A)
in real units, at the chunk that starts where the env's episode now is (the policy counts steps
since each env's reset), and generates only the finer tokens. Plain `act(obs)` generates all.

Size: the paper builds on a VLA-scale transformer with multi-token scales. Here each scale is one
token from a 16-code book over scales (1, 2, 4, 16) frequencies, and the generator is a 2-layer,
64-wide decoder: about 0.15M parameters for a 39-D state and 4-D action (dim=128: about 0.55M).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imitari.config import ConfigError
from imitari.policies.base import Generators, Policy, PolicyConfig, Shapes
from imitari.policies.nn.heads import categorical_from_normal
from imitari.policies.nn.rvq import ResidualVQ
from imitari.policies.nn.transformer import LearnedPositions, TransformerDecoder, TransformerSize
from imitari.policies.phases import Phase, phase_at


@dataclass
class MintConfig(PolicyConfig):
    """MINT: frequency scales and codebooks of the tokeniser, generator size, sampling."""

    scales: tuple[int, ...] = (1, 2, 4, 16)
    """Lowest frequencies kept at each scale, coarse to fine (strictly increasing, the last at
    most action_horizon); scale 0's token is the intent."""
    codebook_size: int = 16
    """Codes per scale."""
    beta: float = 0.25
    """Commitment weight of the VQ loss."""
    tokenizer_steps: int = 300
    """Updates that train only the tokeniser before it is frozen and the generator trains."""
    dim: int = 64
    """Width of the generator transformer."""
    depth: int = 2
    """Decoder layers of the generator."""
    heads: int = 4
    dropout: float = 0.1
    """Dropout of the generator (training only)."""
    target_softness: float = 0.5
    """Width of the soft cross-entropy targets, in squared code spacings (0: one-hot targets).
    Codes near the true one share the target, so the generator learns the codebook's geometry
    and generalises between neighbouring codes instead of memorising exact assignments."""
    temperature: float = 0.0
    """Sampling temperature of the tokens: 0 takes the most likely code (greedy)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.temporal_ensemble:
            raise ConfigError("temporal_ensemble is not for mint: its chunks follow an intent token each, "
                              "and averaging chunks of different intents mixes them")
        self.scales = tuple(self.scales)
        if not self.scales or self.scales[0] < 1 or any(b <= a for a, b in zip(self.scales, self.scales[1:])):
            raise ConfigError(f"scales must be a non-empty, strictly increasing list of positive ints (got {self.scales})")
        if self.scales[-1] > self.action_horizon:
            raise ConfigError(
                f"scales[-1] ({self.scales[-1]}) must be <= action_horizon ({self.action_horizon}): "
                "a chunk of Ta steps has Ta frequencies"
            )
        if self.codebook_size < 2:
            raise ConfigError(f"codebook_size must be >= 2 (got {self.codebook_size})")
        if self.beta < 0:
            raise ConfigError(f"beta must be >= 0 (got {self.beta})")
        if self.tokenizer_steps < 0:
            raise ConfigError(f"tokenizer_steps must be >= 0 (got {self.tokenizer_steps})")
        if self.target_softness < 0:
            raise ConfigError(f"target_softness must be >= 0 (got {self.target_softness}); 0 is one-hot")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0 (got {self.temperature}); 0 is greedy")
        self.size  # TransformerSize raises ConfigError on a bad width, depth, heads or dropout

    @property
    def size(self) -> TransformerSize:
        return TransformerSize(dim=self.dim, depth=self.depth, heads=self.heads, dropout=self.dropout)


def dct_matrix(n: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix `(n, n)`: coefficients = D @ signal, signal = D.T @ coefficients."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    t = torch.arange(n, dtype=torch.float64)[None]
    d = torch.cos(math.pi * (2 * t + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d.float()


class FrequencyTokenizer(nn.Module):
    """Normalised chunks `(B, Ta, A)` <-> one code per scale `(B, S)`, coarse to fine in frequency."""

    dct: torch.Tensor

    def __init__(self, horizon: int, action_dim: int, *, scales: Sequence[int], codebook_size: int, beta: float) -> None:
        super().__init__()
        self.scales = tuple(scales)
        self.register_buffer("dct", dct_matrix(horizon), persistent=False)
        self.quantizers = nn.ModuleList(
            ResidualVQ(k * action_dim, levels=1, codebook_size=codebook_size, beta=beta) for k in self.scales
        )

    def spectrum(self, chunk: torch.Tensor) -> torch.Tensor:
        """DCT-II along time: `(B, Ta, A)` -> `(B, Ta, A)`, lowest frequency first."""
        return torch.einsum("kt,bta->bka", self.dct, chunk)

    def signal(self, spectrum: torch.Tensor) -> torch.Tensor:
        """Inverse DCT: `(B, Ta, A)` coefficients -> chunk."""
        return torch.einsum("kt,bka->bta", self.dct, spectrum)

    def encode(self, chunk: torch.Tensor, *, scales: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes `(B, S')` of the first `scales` (all) scales, and the summed VQ loss."""
        codes, loss, _ = self._quantize(chunk, scales)
        return codes, loss

    def soft_targets(self, chunk: torch.Tensor, softness: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes `(B, S)` and target distributions `(B, S, K)` that also weigh the codes near
        each scale's input: p_j ~ exp(-|x - c_j|^2 / (softness * mean squared code spacing))."""
        codes, _, inputs = self._quantize(chunk, None)
        targets = []
        for vq, x in zip(self.quantizers, inputs):
            book = vq.decode(torch.arange(vq.codebook_size, device=x.device)[:, None])
            spacing = torch.cdist(book, book).fill_diagonal_(float("inf")).min(dim=1).values.square().mean()
            targets.append(torch.softmax(-torch.cdist(x, book).square() / (softness * spacing + 1e-12), dim=-1))
        return codes, torch.stack(targets, dim=1)

    def _quantize(self, chunk: torch.Tensor, scales: int | None) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        residual = self.spectrum(chunk)
        codes, loss, inputs = [], chunk.new_zeros(()), []
        for k, vq in zip(self.scales[:scales], self.quantizers):
            low = residual[:, :k].flatten(start_dim=1)
            quantized, code, vq_loss = vq(low)
            residual = torch.cat([(low - quantized.detach()).unflatten(1, (k, -1)), residual[:, k:]], dim=1)
            codes.append(code[:, 0])
            inputs.append(low)
            loss = loss + vq_loss
        return torch.stack(codes, dim=1), loss, inputs

    def partial_spectra(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes `(B, S')` -> spectra `(B, S', Ta, A)` reconstructed from scales 0..s, for each s."""
        horizon, action_dim = self.dct.shape[0], self.quantizers[0].dim // self.scales[0]
        parts = []
        for s in range(codes.shape[1]):
            k, vq = self.scales[s], self.quantizers[s]
            part = vq.decode(codes[:, s : s + 1]).unflatten(1, (k, action_dim))
            parts.append(F.pad(part, (0, 0, 0, horizon - k)))
        if not parts:
            return codes.new_zeros((codes.shape[0], 0, horizon, action_dim), dtype=self.dct.dtype)
        return torch.stack(parts, dim=1).cumsum(dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes `(B, S')` of the first S' scales -> normalised chunks `(B, Ta, A)`."""
        return self.signal(self.partial_spectra(codes)[:, -1])


class MintPolicy(Policy):
    """Frequency-space multi-scale action tokens, generated coarse to fine from the observations."""

    train_defaults: ClassVar[Mapping[str, Any]] = {"lr": 1e-3}
    config: MintConfig
    retired_buffers: ClassVar[tuple[str, ...]] = ("updates",)
    """The phase counter that checkpoints before the learner seam saved."""

    def __init__(self, config: MintConfig, *, shapes: Shapes, stats: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__(config, shapes=shapes, stats=stats)
        size, n_scales, k = config.size, len(config.scales), config.codebook_size
        self.tokenizer = FrequencyTokenizer(
            config.action_horizon, self.action_dim, scales=config.scales, codebook_size=k, beta=config.beta
        )
        self.obs_proj = nn.Linear(self.obs_encoder.step_dim, size.dim)
        self.obs_pos = LearnedPositions(config.obs_horizon, size.dim)
        self.start = nn.Parameter(torch.randn(size.dim) * 0.02)
        self.token_emb = nn.Embedding(n_scales * k, size.dim)
        self.spectrum_proj = nn.Linear(config.action_horizon * self.action_dim, size.dim)
        self.token_pos = LearnedPositions(n_scales, size.dim)
        self.decoder = TransformerDecoder(size, causal=True)
        self.logits = nn.Parameter(torch.randn(n_scales, size.dim, k) / math.sqrt(size.dim))
        self._steps: np.ndarray | None = None
        self._demos: list[torch.Tensor | None] | None = None

    # --- generator ---------------------------------------------------------------------------
    def memory(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Observation tokens `(B, To, dim)`."""
        return self.obs_pos(self.obs_proj(self.obs_encoder.encode_steps(self.normalize_obs(obs))))

    def token_logits(self, memory: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Logits `(B, S'+1, K)` of scales 0..S' given the codes `(B, S')` of scales 0..S'-1."""
        offsets = torch.arange(codes.shape[1], device=codes.device) * self.config.codebook_size
        so_far = self.spectrum_proj(self.tokenizer.partial_spectra(codes).detach().flatten(start_dim=2))
        tokens = self.token_emb(codes + offsets) + so_far
        queries = torch.cat([self.start.expand(codes.shape[0], 1, -1), tokens], dim=1)
        hidden = self.decoder(self.token_pos(queries), memory)
        return torch.einsum("bsd,sdk->bsk", hidden, self.logits[: hidden.shape[1]])

    def generate(self, obs: Mapping[str, torch.Tensor], *, generator: Generators = None,
                 intent: torch.Tensor | None = None) -> torch.Tensor:
        """Codes `(B, S)`; rows of `intent` `(B,)` that are >= 0 fix scale 0's code instead."""
        memory = self.memory(obs)
        batch, gen = memory.shape[0], self.noise_generator(generator)
        codes = torch.zeros((batch, 0), dtype=torch.long, device=memory.device)
        for s in range(len(self.config.scales)):
            logits = self.token_logits(memory, codes)[:, s]
            if self.config.temperature > 0:
                noise = self.sample_noise((batch, self.config.codebook_size), gen)
                code = categorical_from_normal(logits / self.config.temperature, noise)
            else:
                code = logits.argmax(dim=-1)
            if s == 0 and intent is not None:
                code = torch.where(intent >= 0, intent.to(code.device), code)
            codes = torch.cat([codes, code[:, None]], dim=1)
        return codes

    # --- policy contract ---------------------------------------------------------------------
    def training_phases(self) -> tuple[Phase, ...]:
        """The tokeniser for `tokenizer_steps` updates, then the generator."""
        return (Phase("tokenizer", self.config.tokenizer_steps), Phase("generator"))

    def loss(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of the phase training starts in (the generator's when `tokenizer_steps` is 0)."""
        return self.phase_loss(batch, phase_at(self.training_phases(), 0))

    def phase_loss(self, batch: Mapping[str, Any], phase: str) -> tuple[torch.Tensor, dict[str, float]]:
        """"tokenizer": the VQ loss; "generator": the tokens' cross-entropy (tokeniser frozen)."""
        if phase not in ("tokenizer", "generator"):
            raise ValueError(f"MINT has no training phase '{phase}' (phases: tokenizer, generator)")
        target = self.normalize_actions(batch["action"])
        tokenizing = phase == "tokenizer"
        self.tokenizer.train(self.training and tokenizing)
        if tokenizing:
            codes, loss = self.tokenizer.encode(target)
            recon = F.mse_loss(self.tokenizer.decode(codes.detach()), target)
            return loss, {"vq_loss": float(loss.detach()), "recon_mse": float(recon.detach())}
        with torch.no_grad():
            if self.config.target_softness > 0:
                codes, probs = self.tokenizer.soft_targets(target, self.config.target_softness)
            else:
                codes, _ = self.tokenizer.encode(target)
                probs = F.one_hot(codes, self.config.codebook_size).to(target.dtype)
        logits = self.token_logits(self.memory(batch["obs"]), codes[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), probs.flatten(0, 1))
        accuracy = (logits.argmax(-1) == codes).float().mean(0)
        return loss, {"ce": float(loss.detach()), "intent_acc": float(accuracy[0]), "token_acc": float(accuracy.mean())}

    def predict_chunk(self, obs: Mapping[str, torch.Tensor], *, generator: Generators = None,
                      intent: torch.Tensor | None = None) -> torch.Tensor:
        """Chunks `(B, Ta, A)`, real units; `intent` `(B,)` as in `generate`."""
        return self.unnormalize_actions(self.tokenizer.decode(self.generate(obs, generator=generator, intent=intent)))

    def intent_codes(self, chunks: torch.Tensor) -> torch.Tensor:
        """The intent (scale-0) code `(B,)` of action chunks `(B, Ta, *action)` in real units."""
        training = self.tokenizer.training
        self.tokenizer.eval()
        try:
            return self.tokenizer.encode(self.normalize_actions(chunks), scales=1)[0][:, 0]
        finally:
            self.tokenizer.train(training)

    # --- acting, with intent injection -------------------------------------------------------
    def act(self, obs: Mapping[str, np.ndarray], intent_from: Any = None) -> np.ndarray:
        """`Policy.act`, optionally taking each env's intent token from a demonstration.

        `intent_from`: an action array (T, *action) in real units for every env, or one per env
        (None: that env generates its intent). The intent of a chunk predicted at step t of an
        env's episode comes from the demonstration's chunk at step t (rows clamped to the demo).
        """
        n = self._batch_size(obs)
        if self._history is None or self._history.n != n or self._steps is None:
            self._steps = np.zeros(n, dtype=np.int64)
        demos = intent_from if isinstance(intent_from, (list, tuple)) else [intent_from] * n
        if len(demos) != n:
            raise ValueError(f"intent_from has {len(demos)} demonstrations for {n} envs")
        self._demos = [None if d is None else torch.from_numpy(np.array(d, np.float32)) for d in demos]
        try:
            actions = super().act(obs)
        finally:
            self._demos = None
        self._steps += 1
        return actions

    def predict_envs(self, env_ids: np.ndarray) -> np.ndarray:
        """Chunks of these envs, with the intents of the current `act` call's demonstrations."""
        assert self._history is not None and self._steps is not None, "predict_envs needs act's state"
        device, dtype = self.device, self.dtype
        with torch.inference_mode():
            window = {k: torch.as_tensor(v).to(device, dtype) for k, v in self._history.windows(env_ids).items()}
            intent = torch.full((len(env_ids),), -1, dtype=torch.long, device=device)
            for row, env in enumerate(env_ids):
                demo = None if self._demos is None else self._demos[int(env)]
                if demo is not None:
                    start = int(self._steps[env]) - (self.config.obs_horizon - 1)
                    rows = np.clip(np.arange(start, start + self.config.action_horizon), 0, len(demo) - 1)
                    intent[row] = self.intent_codes(demo[rows][None].to(device, dtype))[0]
            gens = [self.env_generator(int(i)) for i in env_ids]
            chunk = self.predict_chunk(window, generator=gens, intent=intent)
        return chunk.to(torch.float32).cpu().numpy()

    def reset(self, env_ids: Sequence[int] | None = None, *, seeds: Sequence[int | None] | None = None,
              **kwargs: Any) -> None:
        """`Policy.reset`, also restarting these envs' step counts (the demo's clock)."""
        super().reset(env_ids, seeds=seeds, **kwargs)
        if self._history is None or env_ids is None:
            self._steps = None
        elif self._steps is not None:
            self._steps[[int(i) for i in env_ids]] = 0
