"""EgoGen-shaped features for stable-baselines3's actor-critic.

:class:`EgoGenExtractor` turns one EgoLocomotion observation (``egosim.envs.locomotion``;
local body frame, metres) into a feature vector; SB3's ``MultiInputPolicy`` then puts the
actor and critic MLPs (``net_arch``) on top and a diagonal Gaussian over the action
``Box(-1, 1, (128,))`` (the prior's latent divided by ``action.scale``).

=============  ==========  =====================================================  ========
input key      shape       encoder                                                features
=============  ==========  =====================================================  ========
markers        (B, 402)    2 frames x (67 markers xyz ++ 67 unit goal vectors)    hidden
goal_dirs      (B, 201)    -> GRU(402 -> hidden) over the 2 frames, last state
ego_sensing    (B, 32)     MLP [sensing, sensing] (Tanh); absent if ablated       sensing
goal_distance  (B, 1)      sin/cos of 2^k * pi * x, k < pe_frequencies            2 * F
time_left      (B, 1)      same                                                   2 * F
=============  ==========  =====================================================  ========

EgoGen encodes the marker history with a GRU; here the goal vectors of the latest frame are
appended to both frames so that the GRU sees body and goal together.

:class:`CameraCombinedExtractor` is a generic extractor for observations with head-camera
images (``cameras.specs``): a small CNN per image key, every other key flattened. SB3's own
``CombinedExtractor`` only takes uint8 images as images; a float depth image ``(H, W, 1)``
would be flattened into an MLP's input (and with ``normalize_images=False`` its channel
axis would be read as the first one).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from egosim.envs.motion.primitive_windows import HISTORY_FRAMES
from egosim.envs.observation import OBS_KEYS

__all__ = ["EgoGenExtractor", "CameraCombinedExtractor", "sinusoidal_encoding",
           "policy_kwargs"]

#: Frames of markers in the observation: the prior's history frames.
HISTORY = HISTORY_FRAMES


def sinusoidal_encoding(x: torch.Tensor, frequencies: int) -> torch.Tensor:
    """Positional encoding of scalars in [0, 1].

    Args:
        x: ``(B, 1)`` values (goal distance ``1 / (d + 1)`` or time left).
        frequencies: ``F``, frequencies ``2^k * pi`` for ``k < F``.

    Returns:
        ``(B, 2 F)``: ``[sin(2^k pi x)..., cos(2^k pi x)...]``.
    """
    k = torch.arange(frequencies, dtype=x.dtype, device=x.device)
    ang = x * (math.pi * 2.0 ** k)  # (B, F)
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)


class EgoGenExtractor(BaseFeaturesExtractor):
    """Marker-history GRU + ego-sensing MLP + positional codes (see the module docstring).

    Args:
        observation_space: the single-human EgoLocomotion ``Dict`` space.
        marker_hidden: GRU hidden size (EgoGen: 256 in the prior; 128 here).
        sensing_hidden: ego-sensing MLP width.
        pe_frequencies: frequencies of each positional encoding.
        use_ego_sensing: False drops the rays (the ablation without ego-sensing).
    """

    def __init__(self, observation_space: gym.spaces.Dict, marker_hidden: int = 128,
                 sensing_hidden: int = 64, pe_frequencies: int = 6,
                 use_ego_sensing: bool = True) -> None:
        spaces = observation_space.spaces
        for key in OBS_KEYS:
            if key not in spaces and (use_ego_sensing or key != "ego_sensing"):
                raise ValueError(f"EgoGenExtractor needs observation key {key!r}; the space "
                                 f"has {sorted(spaces)}")
        m_dim = spaces["markers"].shape[0]
        g_dim = spaces["goal_dirs"].shape[0]
        if m_dim != HISTORY * g_dim or spaces["goal_distance"].shape != (1,):
            raise ValueError(f"markers ({m_dim}) must hold {HISTORY} frames of goal_dirs' "
                             f"{g_dim} values: a single-human observation space is needed")
        n_rays = spaces["ego_sensing"].shape[0] if use_ego_sensing else 0
        features = marker_hidden + (sensing_hidden if use_ego_sensing else 0) \
            + 4 * pe_frequencies
        super().__init__(observation_space, features_dim=features)
        self.frame_dim = g_dim
        self.pe_frequencies = pe_frequencies
        self.use_ego_sensing = use_ego_sensing
        self.gru = nn.GRU(2 * g_dim, marker_hidden, batch_first=True)
        self.sensing = nn.Sequential(
            nn.Linear(n_rays, sensing_hidden), nn.Tanh(),
            nn.Linear(sensing_hidden, sensing_hidden), nn.Tanh(),
        ) if use_ego_sensing else None

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``obs`` (batched, see the module table) -> ``(B, features_dim)``."""
        b = obs["markers"].shape[0]
        frames = obs["markers"].reshape(b, HISTORY, self.frame_dim)
        goal = obs["goal_dirs"].reshape(b, 1, self.frame_dim).expand(b, HISTORY, -1)
        _, h = self.gru(torch.cat([frames, goal], dim=-1))  # h: (1, B, hidden)
        parts = [h[0]]
        if self.sensing is not None:
            parts.append(self.sensing(obs["ego_sensing"]))
        parts.append(sinusoidal_encoding(obs["goal_distance"], self.pe_frequencies))
        parts.append(sinusoidal_encoding(obs["time_left"], self.pe_frequencies))
        return torch.cat(parts, dim=-1)


def policy_kwargs(marker_hidden: int, sensing_hidden: int, pe_frequencies: int,
                  use_ego_sensing: bool, net_arch_pi: list[int], net_arch_vf: list[int],
                  log_std_init: float, share_features_extractor: bool = False
                  ) -> dict[str, Any]:
    """``policy_kwargs`` for ``PPO("MultiInputPolicy", ...)`` with :class:`EgoGenExtractor`.

    ``share_features_extractor=False`` gives the actor and the critic one encoder each: with
    a shared one, the value loss (returns of order 10-100, squared) dominates the encoder's
    gradient and the actor learns slowly (:mod:`egosim.agents.imitation` measures it).
    """
    return {
        "features_extractor_class": EgoGenExtractor,
        "features_extractor_kwargs": {"marker_hidden": marker_hidden,
                                      "sensing_hidden": sensing_hidden,
                                      "pe_frequencies": pe_frequencies,
                                      "use_ego_sensing": use_ego_sensing},
        "net_arch": {"pi": list(net_arch_pi), "vf": list(net_arch_vf)},
        "activation_fn": nn.Tanh,
        "log_std_init": log_std_init,
        "ortho_init": True,
        "share_features_extractor": share_features_extractor,
    }


class CameraCombinedExtractor(BaseFeaturesExtractor):
    """Features of a Dict observation with images: a CNN per image, the rest flattened.

    An image key is a 3-D ``Box``: channels first (``(C, H, W)``, what SB3's
    ``VecTransposeImage`` makes of an rgb ``(H, W, 3)`` uint8 image, already scaled to
    [0, 1] by SB3) or channels last with at most 4 channels (a float depth image ``(H, W,
    1)``, metres: divided by the space's upper bound, the camera's ``far``). Each goes
    through ``Conv(3x3, stride 2) -> ReLU -> Conv(3x3, stride 2) -> ReLU -> adaptive average
    pool to 4 x 4 -> Linear(cnn_output_dim) -> ReLU`` (any size >= 1 pixel). Every other key
    is flattened as a float.

    Args:
        observation_space: the env's ``Dict`` space (as SB3 hands it over).
        cnn_output_dim: features per image.

    Use: ``PPO("MultiInputPolicy", venv, policy_kwargs={"features_extractor_class":
    CameraCombinedExtractor})``.
    """

    def __init__(self, observation_space: gym.spaces.Dict, cnn_output_dim: int = 64) -> None:
        import numpy as np
        from stable_baselines3.common.preprocessing import get_flattened_obs_dim, is_image_space

        layout: dict[str, tuple[bool, float, int]] = {}
        total = 0
        for key, sub in observation_space.spaces.items():
            if len(sub.shape) == 3:
                first = sub.shape[0] <= 4 and sub.shape[0] <= sub.shape[-1]
                if not first and sub.shape[-1] > 4:
                    raise ValueError(f"image key {key!r} of shape {sub.shape}: need (C, H, W) "
                                     "or (H, W, C) with C <= 4")
                high = float(np.max(sub.high))
                scale = 1.0 if is_image_space(sub) or not np.isfinite(high) or high <= 0 \
                    else 1.0 / high
                layout[key] = (first, scale, sub.shape[0] if first else sub.shape[-1])
                total += cnn_output_dim
            else:
                total += get_flattened_obs_dim(sub)
        super().__init__(observation_space, features_dim=total)
        self.layout = layout
        self.cnns = nn.ModuleDict({
            key: nn.Sequential(
                nn.Conv2d(c, 16, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
                nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                nn.Linear(32 * 16, cnn_output_dim), nn.ReLU())
            for key, (_, _, c) in layout.items()})

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``obs`` (batched) -> ``(B, features_dim)``."""
        parts = []
        for key in self._observation_space.spaces:
            x = obs[key].float()
            if key in self.layout:
                first, scale, _ = self.layout[key]
                if not first:
                    x = x.permute(0, 3, 1, 2)
                parts.append(self.cnns[key](x * scale))
            else:
                parts.append(x.reshape(x.shape[0], -1))
        return torch.cat(parts, dim=-1)
