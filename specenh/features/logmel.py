"""Log-mel features identical to the frozen ASR's NeMo preprocessor, minus dither and normalisation.

NeMo's ``AudioToMelSpectrogramPreprocessor`` computes, per utterance of ``L`` samples:
pre-emphasis ``y[n] = x[n] - 0.97 x[n-1]`` (samples past ``L`` zeroed), a centred STFT with
constant (zero) padding, a symmetric Hann window of ``win_length`` samples zero-padded to ``n_fft``,
power ``|X|^mag_power``, a slaney-normalised mel filterbank (librosa), ``log(x + 2^-24)``, and
``T = L // hop`` valid frames. We compute exactly that, in float32, batched, with the per-feature
normalisation left to the ASR wrapper at decode time (the enhancer works on unnormalised log-mels).

``FeatureConfig.from_nemo(model.cfg.preprocessor)`` reads the settings of any NeMo model.

``FeatureConfig.whisper()`` (flavour ``whisper``) gives Whisper's features instead, as faster-whisper's
``FeatureExtractor`` computes them for ``transcribe``: the utterance followed by zeros, a centred STFT
(reflect padding) with a periodic Hann window, ``|X|^2``, slaney mels, ``log10(max(x, 1e-10))``, floored
at the utterance's maximum minus 8 (the maximum over the ``L // hop + 1`` frames faster-whisper computes),
then ``(x + 4) / 4``; ``T = L // hop`` valid frames, padding frames 0 (faster-whisper's ``pad_or_trim``).
"""
from __future__ import annotations

import torch
from torch import nn

from specenh.features.config import FeatureConfig


_WINDOWS = {
    "hann": torch.hann_window, "hamming": torch.hamming_window,
    "blackman": torch.blackman_window, "bartlett": torch.bartlett_window,
}


def num_frames(num_samples: torch.Tensor | int, cfg: FeatureConfig) -> torch.Tensor | int:
    """Valid frames for ``num_samples`` samples: ``(L + 2*(n_fft//2) - n_fft) // hop`` (NeMo's rule)."""
    pad = cfg.n_fft // 2 * 2
    if isinstance(num_samples, torch.Tensor):
        return torch.div(num_samples + pad - cfg.n_fft, cfg.hop_length, rounding_mode="floor").long()
    return (num_samples + pad - cfg.n_fft) // cfg.hop_length


def mel_filterbank(cfg: FeatureConfig) -> torch.Tensor:
    """[n_mels, n_fft//2 + 1] float32 filterbank (librosa, slaney scale, as NeMo builds it)."""
    import librosa

    fb = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.features, fmin=cfg.lowfreq,
                             fmax=cfg.highfreq or cfg.sample_rate / 2, norm=cfg.mel_norm)
    return torch.tensor(fb, dtype=torch.float32)


class LogMelExtractor(nn.Module):
    """Waveform batch -> log-mel batch.

    forward(wave [B, N] float32, lengths [B] samples) -> (feats [B, n_mels, T_max], frames [B]).
    Frames at or past ``frames[b]`` are set to 0 (NeMo's pad value). Differentiable.
    """

    def __init__(self, cfg: FeatureConfig | None = None):
        super().__init__()
        self.cfg = cfg or FeatureConfig()
        if self.cfg.window not in _WINDOWS:
            raise ValueError(f"unsupported window {self.cfg.window!r}")
        periodic = self.cfg.flavour == "whisper"  # NeMo: symmetric Hann; Whisper: periodic (np.hanning(n + 1)[:-1])
        self.register_buffer("window", _WINDOWS[self.cfg.window](self.cfg.win_length, periodic=periodic),
                             persistent=False)
        self.register_buffer("fb", mel_filterbank(self.cfg), persistent=False)

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        if wave.dim() != 2:
            raise ValueError(f"wave must be [B, N], got {tuple(wave.shape)}")
        wave = wave.float()
        lengths = lengths.to(wave.device)
        if cfg.flavour == "whisper":
            return self._whisper(wave, lengths)
        frames = num_frames(lengths, cfg)
        valid = torch.arange(wave.shape[1], device=wave.device)[None, :] < lengths[:, None]
        if cfg.preemph is not None:
            wave = torch.cat([wave[:, :1], wave[:, 1:] - cfg.preemph * wave[:, :-1]], dim=1)
        wave = wave.masked_fill(~valid, 0.0)
        spec = torch.stft(wave, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
                          window=self.window, center=True, pad_mode="constant", return_complex=True)
        power = spec.real.square() + spec.imag.square()  # |X|^2
        if cfg.mag_power != 2.0:
            power = power.pow(cfg.mag_power / 2.0)
        mel = torch.matmul(self.fb, power)  # [B, n_mels, T]
        if cfg.log_zero_guard_type == "add":
            feats = torch.log(mel + cfg.log_zero_guard_value)
        elif cfg.log_zero_guard_type == "clamp":
            feats = torch.log(mel.clamp(min=cfg.log_zero_guard_value))
        else:
            raise ValueError(f"unknown log_zero_guard_type {cfg.log_zero_guard_type!r}")
        pad = torch.arange(feats.shape[-1], device=feats.device)[None, :] >= frames[:, None]
        feats = feats.masked_fill(pad[:, None, :], 0.0)
        return feats, frames

    def _whisper(self, wave: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Whisper's log-mel (see the module docstring): wave [B, N], lengths [B] -> ([B, n_mels, T], [B])."""
        cfg = self.cfg
        frames = torch.div(lengths, cfg.hop_length, rounding_mode="floor").long()
        valid = torch.arange(wave.shape[1], device=wave.device)[None, :] < lengths[:, None]
        # zeros after every utterance (faster-whisper appends a hop of zeros; its reflect padding at the end
        # then mirrors zeros): every kept frame, and the extra one of the maximum, sees signal and zeros only
        wave = torch.nn.functional.pad(wave.masked_fill(~valid, 0.0), (0, cfg.hop_length + cfg.n_fft))
        spec = torch.stft(wave, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
                          window=self.window, center=True, pad_mode="reflect", return_complex=True)
        power = spec.real.square() + spec.imag.square()
        logmel = torch.log10(torch.matmul(self.fb, power).clamp(min=cfg.log_zero_guard_value))  # [B, D, T']
        t = torch.arange(logmel.shape[-1], device=wave.device)[None, :]
        in_max = (t <= frames[:, None])[:, None, :]  # the L // hop + 1 frames faster-whisper computes
        peak = logmel.masked_fill(~in_max, float("-inf")).amax(dim=(1, 2), keepdim=True)
        feats = (torch.maximum(logmel, peak - 8.0) + 4.0) / 4.0
        t_max = int(frames.max()) if frames.numel() else 0
        feats = feats[..., :t_max]
        pad = t[:, :t_max] >= frames[:, None]
        return feats.masked_fill(pad[:, None, :], 0.0), frames
