"""Feature storage: float32 [T, n_mels] matrices in Kaldi ark/scp files (kaldiio), and batching."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping, Sequence

import kaldiio
import numpy as np

from specenh.data.kaldi import DataDirError, read_kv

if TYPE_CHECKING:
    import torch


def read_feats_scp(scp: str | Path) -> Mapping[str, np.ndarray]:
    """Lazy mapping utt -> float32 [T, n_mels] (reads on access)."""
    scp = Path(scp)
    if not scp.is_file():
        raise DataDirError(f"features not found: {scp}")
    return kaldiio.load_scp(str(scp))


def load_feat(feats: Mapping[str, np.ndarray], utt: str) -> np.ndarray:
    """One utterance's features with a clear error when the ark entry is broken."""
    try:
        x = feats[utt]
    except KeyError:
        raise DataDirError(f"utterance {utt!r} has no features") from None
    except Exception as e:  # truncated or corrupt ark
        raise DataDirError(f"cannot read features of utterance {utt!r}: {e}") from None
    if not np.all(np.isfinite(x)):
        raise DataDirError(f"features of utterance {utt!r} contain NaN or inf")
    return np.asarray(x, dtype=np.float32)


def pad_batch(mats: Sequence[np.ndarray | torch.Tensor], pad_value: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """List of [T_i, D] -> (batch [B, D, T_max], lengths [B]) in NeMo's channel-first layout."""
    import torch  # here: the scp/ark helpers of this module do not need torch

    lengths = torch.tensor([m.shape[0] for m in mats], dtype=torch.long)
    dim = mats[0].shape[1]
    out = torch.full((len(mats), dim, int(lengths.max())), pad_value, dtype=torch.float32)
    for i, m in enumerate(mats):
        out[i, :, : m.shape[0]] = torch.as_tensor(np.array(m, dtype=np.float32, copy=True)).T
    return out, lengths


def unpad_batch(batch: torch.Tensor, lengths: torch.Tensor) -> list[np.ndarray]:
    """(batch [B, D, T], lengths [B]) -> list of float32 [T_i, D] numpy arrays."""
    return [batch[i, :, : int(lengths[i])].T.detach().cpu().numpy().astype(np.float32) for i in range(batch.shape[0])]


def length_sorted_batches(lengths: Mapping[str, int], batch_size: int, max_frames: int | None = None) -> Iterator[list[str]]:
    """Group utterance ids of similar length (descending) into batches of at most ``batch_size``
    utterances and, optionally, at most ``max_frames`` padded frames (:func:`frame_chunks` of the sorted ids)."""
    order = sorted(lengths, key=lambda u: (-lengths[u], u))
    if order:
        for a, b in frame_chunks([lengths[u] for u in order], max_frames, batch_size):
            yield order[a:b]


def frame_chunks(lengths: list[int], max_frames: int | None, max_items: int | None = None) -> list[tuple[int, int]]:
    """Consecutive ``[start, end)`` slices of a batch of utterances with these lengths (frames), each of at most
    ``max_frames`` padded frames (its longest times its size; None or 0: no limit) and ``max_items`` utterances,
    and at least one utterance."""
    if not max_frames and not max_items:
        return [(0, len(lengths))]
    out, start, longest = [], 0, 0
    for i, n in enumerate(lengths):
        if i > start and ((max_frames and max(longest, n) * (i - start + 1) > max_frames)
                          or (max_items and i - start >= max_items)):
            out.append((start, i))
            start, longest = i, 0
        longest = max(longest, n)
    out.append((start, len(lengths)))
    return out


class FeatWriter:
    """Write ``ark,scp`` pairs; use as a context manager."""

    def __init__(self, ark: str | Path, scp: str | Path):
        Path(ark).parent.mkdir(parents=True, exist_ok=True)
        self._w = kaldiio.WriteHelper(f"ark,scp:{ark},{scp}")

    def __enter__(self) -> "FeatWriter":
        return self

    def __exit__(self, *exc) -> None:
        self._w.close()

    def write(self, utt: str, mat: np.ndarray) -> None:
        self._w(utt, np.ascontiguousarray(mat, dtype=np.float32))


def read_utt2num_frames(path: str | Path) -> dict[str, int]:
    return {k: int(v) for k, v in read_kv(path).items()}


def iter_scp_keys(path: str | Path) -> Iterable[str]:
    return read_kv(path).keys()
