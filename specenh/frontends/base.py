"""The one front-end interface every enhancer and baseline implements, plus the name registry.

A front-end maps degraded input to enhanced input for the frozen ASR:

- ``domain = "logmel"``: ``forward(x [B, D, T] unnormalised log-mel, lengths [B]) -> (y [B, D, T], lengths)``;
- ``domain = "wave"``: ``forward(x [B, N] waveform, lengths [B] samples) -> (y [B, N], lengths)``; runs
  before feature extraction.

Batched and masked by length (no Python loop over utterances). ``serialize()`` returns a dict
holding the config and the weights, so ``specenh.frontends.load(path)`` needs nothing else.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
from torch import nn

import specenh

log = logging.getLogger(__name__)

REGISTRY: dict[str, type["FrontEnd"]] = {}


def register(name: str):
    """Class decorator adding a front-end to the registry under ``name``."""

    def deco(cls: type["FrontEnd"]) -> type["FrontEnd"]:
        if name in REGISTRY and REGISTRY[name] is not cls:
            raise ValueError(f"front-end name {name!r} registered twice")
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return deco


@dataclass
class BatchInputs:
    """What a stage can give a front-end for one batch besides ``(x, lengths)``; a front-end takes what it
    declares in :meth:`FrontEnd.extra_inputs`.

    utts: the batch's utterance ids; feats_dir: the degraded set's stage-3 feature dir (side files such as
    saved hole masks live there); num_frames: frames per utterance; frames: the padded length ``T`` of ``x``;
    clean: a function returning the clean log-mel of the batch (``[B, D, T']``, lengths ``[B]``), or None
    where the stage has none.
    """

    utts: list[str]
    feats_dir: Path | None = None
    num_frames: dict[str, int] = field(default_factory=dict)
    frames: int = 0
    device: str | torch.device = "cpu"
    clean: Callable[[], tuple[torch.Tensor, torch.Tensor]] | None = None


class FrontEnd(nn.Module):
    """Base class. Subclasses set ``domain``, ``trainable`` and implement ``forward``; one that needs
    more than ``(x, lengths)`` declares it by overriding :meth:`extra_inputs`."""

    name: ClassVar[str] = "base"
    domain: ClassVar[str] = "logmel"
    trainable: ClassVar[bool] = False
    needs_clean: ClassVar[bool] = False  # oracle only: forward gets the clean input too
    passthrough: ClassVar[bool] = False  # identity: the output is the input (stages reuse the input's results)
    reads_input: ClassVar[bool] = True   # False: the output ignores the degraded input (oracle: the clean
                                         # features), so every condition of a set decodes alike
    standalone: ClassVar[bool] = True    # False: built from other front-ends (auto), not alone from a name
    #: training conditions (fnmatch patterns on ``<set>_<condition>``) when its config names none
    default_conditions: ClassVar[tuple[str, ...]] = ("*",)
    #: on a CPU, the padded frames per forward pass beyond which the network's activations outgrow the caches
    #: and a batch runs slower than its parts: the batch enhancer cuts a larger batch into consecutive chunks
    #: of at most this many (None: never cut). Measured with ``specenh bench --sections frontends --batch-frames``.
    cpu_chunk_frames: ClassVar[int | None] = None
    #: on a CPU, run inference with channels-last (NHWC) 4-D weights, so that oneDNN's 2-D convolutions keep their
    #: activations in the layout they compute in instead of converting each call's input and output (measured
    #: with ``specenh bench --sections frontends``). Training keeps PyTorch's default layout: :meth:`train`
    #: restores it, so neither the training numerics nor the checkpoints change.
    cpu_channels_last: ClassVar[bool] = False

    def extra_inputs(self, batch: BatchInputs) -> dict[str, Any]:
        """Keyword inputs of ``forward`` beyond ``(x, lengths)`` for one batch (default: none)."""
        return {}

    def __init__(self, **config: Any):
        super().__init__()
        self.config: dict[str, Any] = dict(config)
        self.obs_alpha: list[float] | None = None  # observation adding (inference only; see set_observation_adding)
        self.obs_domain = "logmel"
        self._channels_last = False

    def train(self, mode: bool = True) -> "FrontEnd":
        if mode:  # training: PyTorch's default layout again
            self._set_channels_last(False)
        return super().train(mode)

    def _set_channels_last(self, on: bool) -> None:
        """4-D weights channels-last (``on``) or in the default layout; ordinary tensors either way (not inference
        tensors: the module may be trained afterwards)."""
        if on != getattr(self, "_channels_last", False):
            with torch.inference_mode(False):
                self.to(memory_format=torch.channels_last if on else torch.contiguous_format)
            self._channels_last = on

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, **kw: Any) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    # ------------------------------------------------------------------ supervised training hooks
    def training_loss(self, est: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor,
                      loss_cfg: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The supervised trainer's loss of an output against its clean target: ``{"loss": scalar, ...}``.
        Default (log-mel): mean L1 over the valid frames; est, target ``[B, D, T]``, lengths ``[B]``."""
        est = est.float()
        valid = (torch.arange(est.shape[-1], device=est.device)[None, :] < lengths.to(est.device)[:, None]).to(est.dtype)
        return {"loss": ((est - target).abs() * valid[:, None, :]).sum() / (valid.sum() * est.shape[1]).clamp_min(1)}

    def augment_training_input(self, x: torch.Tensor, target: torch.Tensor, generator: torch.Generator,
                               augment_cfg: dict[str, Any]) -> torch.Tensor:
        """A training batch's input, possibly augmented (``x``, ``target`` ``[B, D, T]``; draws from
        ``generator`` only, so training stays a function of the seed). Default: unchanged."""
        return x

    def members(self) -> list[tuple[str, "FrontEnd"]]:
        """The front-ends a stage runs for this one, with labels: itself, or (``auto``) its members."""
        return [("", self)]

    @torch.inference_mode()
    def candidates(self, x: torch.Tensor, lengths: torch.Tensor, **kw: Any) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """The outputs a stage may choose from, as ``[(label, y, lengths)]``: one, or one per observation-adding
        weight of a grid (the stage keeps, per utterance, the one the frozen ASR is most confident about).
        Eval mode, no grad; padding beyond the lengths is zeroed."""
        self.eval()
        self._set_channels_last(self.cpu_channels_last and x.device.type == "cpu")
        y, out_len = self(x, lengths, **kw)
        if self.obs_alpha is None:
            return [("", mask_padding(y, out_len), out_len)]
        if y.shape != x.shape:
            raise ValueError(f"front-end {self.name!r}: observation adding needs the output shaped like the input "
                             f"({tuple(y.shape)} vs {tuple(x.shape)})")
        return [(f"alpha={a:g}", mask_padding(observation_add(x, y, a, self.obs_domain), out_len), out_len)
                for a in self.obs_alpha]

    @torch.inference_mode()
    def enhance(self, x: torch.Tensor, lengths: torch.Tensor, **kw: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Inference entry point (eval mode, no grad); padding beyond ``lengths`` is zeroed."""
        cands = self.candidates(x, lengths, **kw)
        if len(cands) > 1:
            raise ValueError(f"front-end {self.name!r} has {len(cands)} candidate outputs (alpha={self.obs_alpha}); "
                             f"choosing among them needs the frozen ASR (stage 5, specenh decode)")
        return cands[0][1], cands[0][2]

    def set_observation_adding(self, alpha: Any = None, alpha_domain: str = "logmel") -> None:
        """Observation adding: output = input + alpha (enhanced - input), in the log-mel domain or in the
        mel power domain (``log((1 - alpha) e^x + alpha e^y)``). ``alpha``: a weight in [0, 1], or a list
        (or ``"0,0.3,0.6,1"``) of weights chosen per utterance by the frozen ASR's confidence in stage 5."""
        if alpha is None:
            self.obs_alpha = None
            return
        if self.domain != "logmel":
            raise ValueError(f"front-end {self.name!r} works on waveforms: observation adding is for log-mel front-ends")
        if isinstance(alpha, str):
            alpha = [float(a) for a in alpha.replace(",", " ").split()]
        vals = [float(a) for a in (alpha if isinstance(alpha, (list, tuple)) else [alpha])]
        if not vals or any(not 0.0 <= a <= 1.0 for a in vals):
            raise ValueError(f"alpha must be in [0, 1] (or a list of such), got {alpha!r}")
        if alpha_domain not in ("logmel", "power"):
            raise ValueError(f"alpha_domain must be logmel or power, got {alpha_domain!r}")
        self.obs_alpha, self.obs_domain = vals, str(alpha_domain)

    def configure_inference(self, **options: Any) -> "FrontEnd":
        """Apply inference options: observation adding (``alpha``, ``alpha_domain``) for any log-mel
        front-end, the rest through :meth:`set_inference_options`."""
        obs = {k: options.pop(k) for k in ("alpha", "alpha_domain") if k in options}
        if obs:
            self.set_observation_adding(**obs)
        if options:
            self.set_inference_options(**options)
        return self

    def set_inference_options(self, **options: Any) -> None:
        """Change inference-time options of a loaded front-end (e.g. truncation ``psi``). The default
        accepts keys already in the config and records them there."""
        unknown = set(options) - set(self.config)
        if unknown:
            raise ValueError(f"front-end {self.name!r} has no inference options {sorted(unknown)}")
        self.config.update(options)
        for k, v in options.items():
            if hasattr(self, k):
                setattr(self, k, v)

    def inference_defaults(self) -> dict[str, Any]:
        """The observation-adding settings a checkpoint carries (applied again by :func:`load`); other
        inference options live in ``config``."""
        if self.obs_alpha is None:
            return {}
        alpha: Any = self.obs_alpha[0] if len(self.obs_alpha) == 1 else list(self.obs_alpha)
        return {"alpha": alpha, "alpha_domain": self.obs_domain}

    def serialize(self) -> dict[str, Any]:
        out = {"name": self.name, "config": self.config, "state_dict": self.state_dict(),
               "specenh_version": specenh.__version__}
        if self.inference_defaults():
            out["inference"] = self.inference_defaults()
        return out

    def save(self, path: str | Path) -> None:
        from specenh.utils.io import atomic_path

        with atomic_path(path) as tmp:
            torch.save(self.serialize(), tmp)


def observation_add(x: torch.Tensor, y: torch.Tensor, alpha: float, domain: str = "logmel") -> torch.Tensor:
    """``x + alpha (y - x)`` for log-mels x (input) and y (enhanced), [B, D, T]; in the power domain
    ``log((1 - alpha) e^x + alpha e^y)``. alpha 0 gives the input, 1 the enhanced output."""
    if alpha <= 0.0:
        return x
    if alpha >= 1.0:
        return y
    if domain == "logmel":
        return x + alpha * (y - x)
    import math

    return torch.logaddexp(x + math.log(1.0 - alpha), y + math.log(alpha))


def mask_padding(y: torch.Tensor, lengths: torch.Tensor, value: float = 0.0) -> torch.Tensor:
    """Set positions at or past ``lengths`` along the last axis to ``value``. y [B, ..., T]."""
    t = torch.arange(y.shape[-1], device=y.device)
    pad = t[None, :] >= lengths.to(y.device)[:, None]  # [B, T]
    return y.masked_fill(pad.view(pad.shape[0], *([1] * (y.dim() - 2)), pad.shape[1]), value)


def frontend_class(name: str) -> type[FrontEnd]:
    """The registered class of front-end ``name`` (ValueError naming the registered ones otherwise)."""
    _import_all()
    if name not in REGISTRY:
        raise ValueError(f"unknown front-end {name!r}; registered: {sorted(REGISTRY)}")
    return REGISTRY[name]


def build(config: dict[str, Any] | str) -> FrontEnd:
    """A front-end from ``{"name": ..., **kwargs}`` (or just a name)."""
    _import_all()
    if isinstance(config, str):
        config = {"name": config}
    config = dict(config)
    name = config.pop("name", None)
    if name not in REGISTRY:
        raise ValueError(f"unknown front-end {name!r}; registered: {sorted(REGISTRY)}")
    return REGISTRY[name](**config)


def load(path: str | Path, map_location: str | torch.device = "cpu") -> FrontEnd:
    """A front-end from a checkpoint written by ``FrontEnd.save`` (config + weights)."""
    _import_all()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"front-end checkpoint not found: {path}")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:
        raise ValueError(f"cannot read front-end checkpoint {path}: {type(e).__name__}: {e}") from None
    if not isinstance(ck, dict) or "name" not in ck or "state_dict" not in ck:
        raise ValueError(f"{path} is not a specenh front-end checkpoint (no name/state_dict)")
    try:
        fe = build({"name": ck["name"], **ck.get("config", {})})
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: cannot build front-end {ck['name']!r} from the checkpoint's config: {e}") from None
    _check_state_dict(path, fe, ck["state_dict"])
    fe.load_state_dict(ck["state_dict"])
    if ck.get("inference"):  # the training config's inference: block (e.g. observation adding)
        fe.configure_inference(**dict(ck["inference"]))
    return fe.eval()


def _check_state_dict(path: Path, fe: FrontEnd, state: dict[str, Any]) -> None:
    """Raise one ValueError naming the checkpoint and summarising how its tensors differ from the model
    its config builds (torch would list every tensor on a line of its own, without the file)."""
    own = fe.state_dict()
    shapes = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in state.items()
              if k in own and hasattr(v, "shape") and tuple(v.shape) != tuple(own[k].shape)]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if not (shapes or missing or unexpected):
        return
    parts = []
    if shapes:
        k, a, b = shapes[0]
        parts.append(f"{len(shapes)} tensor(s) differ in shape, first: {k} (checkpoint {list(a)} vs model {list(b)})")
    if missing:
        parts.append(f"{len(missing)} missing from the checkpoint, first: {missing[0]}")
    if unexpected:
        parts.append(f"{len(unexpected)} not in the model, first: {unexpected[0]}")
    raise ValueError(f"{path}: weights do not match front-end {fe.name!r} built from the checkpoint's config "
                     f"({'; '.join(parts)}); was the config edited, or the checkpoint written by another "
                     f"version (specenh {specenh.__version__})?")


def resolve(spec: str | Path, options: dict[str, Any] | None = None) -> FrontEnd:
    """A registered name (untrained front-ends: identity, oracle, specsub, ...), a checkpoint path, or
    an inference-variant YAML.

    ``options``: for a name, constructor arguments (e.g. ``{"cutoff": 2000}``); for a checkpoint,
    inference options passed to ``set_inference_options`` (e.g. ``{"psi": 0.7}``).

    An inference variant (``conf/frontend/stylegan_psi0.5.yaml``) reuses a trained model with other
    inference options, so an ablation over them is a front-end of its own in stage 5 and the report::

        checkpoint: exp/frontend_stylegan/model.pt   # relative to the working directory
        inference: {psi: 0.5}

    ``options`` given here override the file's.
    """
    options = dict(options or {})
    p = Path(str(spec))
    if p.suffix in (".yaml", ".yml"):
        import yaml

        if not p.is_file():
            raise FileNotFoundError(f"front-end variant config not found: {p}")
        var = yaml.safe_load(p.read_text()) or {}
        if "members" in var:  # a front-end chosen per utterance among members (specenh.frontends.auto)
            fe = build({"name": "auto", "members": list(var["members"])})
            return fe.configure_inference(**{**dict(var.get("inference") or {}), **options})
        if "checkpoint" not in var:
            raise ValueError(f"{p}: an inference-variant config needs a 'checkpoint:' key (a trained model); "
                             f"training configs are passed to 'specenh train-frontend', not to stage 5")
        return resolve(var["checkpoint"], {**dict(var.get("inference") or {}), **options})
    if p.suffix in (".pt", ".ckpt", ".pth") or p.is_file():
        fe = load(p)
        if options:
            fe.configure_inference(**options)
        return fe
    obs = {k: options.pop(k) for k in ("alpha", "alpha_domain") if k in options}
    return build({"name": str(spec), **options}).configure_inference(**obs)


def parse_options(items: list[str] | None) -> dict[str, Any]:
    """``["psi=0.7", "cutoff=2000"]`` -> ``{"psi": 0.7, "cutoff": 2000}`` (values parsed as YAML)."""
    import yaml

    out: dict[str, Any] = {}
    for it in items or []:
        if "=" not in it:
            raise ValueError(f"front-end option must look like key=value, got {it!r}")
        k, v = it.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


#: modules of this package that define no front-end (everything else in specenh/frontends/ is imported by
#: :func:`_import_all`, so a new front-end is one module with a ``@register`` class, and its config)
_NOT_FRONTEND_MODULES = frozenset({"base", "cli", "spec", "export", "mask_export", "auto_tune"})


def frontend_modules() -> list[str]:
    """The modules whose ``@register`` calls fill REGISTRY: every module and subpackage of
    ``specenh.frontends`` but the infrastructure ones, in name order."""
    import pkgutil

    import specenh.frontends as pkg

    return [f"specenh.frontends.{m.name}" for m in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name)
            if m.name not in _NOT_FRONTEND_MODULES and not m.name.startswith("_")]


def _import_all() -> None:
    from specenh.utils.imports import import_optional

    import_optional(frontend_modules())


def trainable_names() -> list[str]:
    """Registered front-ends that stage 4 trains (``trainable = True``)."""
    _import_all()
    return sorted(n for n, c in REGISTRY.items() if c.trainable)


def untrained_names() -> list[str]:
    """Registered front-ends that run from their name alone (no training, no config): identity, oracle, ..."""
    _import_all()
    return sorted(n for n, c in REGISTRY.items() if not c.trainable and c.standalone)
