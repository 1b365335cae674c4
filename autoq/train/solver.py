"""A network wrapped as a PDE solver at a spatial scale factor (the paper, sections 3.2 and 4.1).

The wrapper owns everything around the network that the data dictates: resizing from the data
grid to the network grid and back (:func:`autoq.data.resize`, by the space's method), per-field
normalisation, and, for time-dependent problems, the residual form ``u_next = u_last + Δ``. The
network itself only ever sees normalised tensors at its own resolution, which is what
quantization wraps. A user's own model
(a network with ``physical_units = True``) works in physical units as it was trained: it gets
the resizing only.
"""

from __future__ import annotations

import torch
from torch import nn

from autoq.bits import Resample
from autoq.data import TrajectoryWindows, network_shape, resize
from autoq.data.resample import RESAMPLE_METHODS
from autoq.errors import SpecError


class ScaledSolver(nn.Module):
    """One-step and autoregressive prediction with a network at ``scale`` of the data grid.

    Inputs and outputs are at the data resolution, ``(batch, channels, *data_shape)``, in the
    channel layout of :class:`~autoq.data.TrajectoryWindows`. During an unrolled rollout the
    states fed back stay at the network resolution; only each prediction is resized back.

    Args:
        network: maps ``(batch, in_channels, *net_shape)`` to ``(batch, out_channels,
            *net_shape)``.
        data_shape: spatial shape of the data grid.
        scale: spatial scale factor in (0, 1].
        fields: physical fields per state.
        input_steps: past states per input (1 for steady problems).
        target_steps: future states per forward pass.
        steady: coefficient → solution (no residual, no rollout).
        in_channels: channels of the input.
        resample: how the input is resized down and the output up (:data:`autoq.bits.Resample`);
            part of the float model's identity, since training runs through the resizes.
    """

    # Buffers registered in __init__: per-channel normalisation of inputs and outputs.
    in_mean: torch.Tensor
    in_std: torch.Tensor
    out_mean: torch.Tensor
    out_std: torch.Tensor

    def __init__(
        self,
        network: nn.Module,
        *,
        data_shape: tuple[int, ...],
        scale: float,
        fields: int,
        input_steps: int,
        target_steps: int,
        steady: bool,
        in_channels: int,
        resample: Resample = "linear",
    ) -> None:
        super().__init__()
        if resample not in RESAMPLE_METHODS:
            raise SpecError(f"resample must be one of {list(RESAMPLE_METHODS)}, got {resample!r}")
        self.resample: Resample = resample
        self.network = network
        self.data_shape = tuple(data_shape)
        self.scale = scale
        self.net_shape = network_shape(self.data_shape, scale)
        self.fields = fields
        self.input_steps = input_steps
        self.target_steps = target_steps
        self.steady = steady
        self.physical_units = bool(getattr(network, "physical_units", False))
        out_channels = target_steps * fields
        self.register_buffer("in_mean", torch.zeros(in_channels))
        self.register_buffer("in_std", torch.ones(in_channels))
        self.register_buffer("out_mean", torch.zeros(out_channels))
        self.register_buffer("out_std", torch.ones(out_channels))

    @torch.no_grad()
    def fit_normalisation(self, windows: TrajectoryWindows) -> None:
        """Per-field statistics of the training windows: of the inputs, and of the targets
        (steady) or of the one-frame increments (time-dependent, the residual's scale). A
        network in physical units keeps the identity."""
        if self.physical_units:
            return
        states = windows.states.double()  # (samples, time, fields, *space)
        if self.steady:
            if windows.coefficients is None:
                raise SpecError("a steady solver needs windows with coefficients; these have none")
            inputs = windows.coefficients.double().transpose(0, 1).flatten(1)
            in_mean, in_std = inputs.mean(1), inputs.std(1)
            outputs = states[:, 0].transpose(0, 1).flatten(1)
            out_mean, out_std = outputs.mean(1), outputs.std(1)
        else:
            per_field = states.transpose(0, 2).flatten(1)
            in_mean = per_field.mean(1).repeat(self.input_steps)
            in_std = per_field.std(1).repeat(self.input_steps)
            increments = (states[:, 1:] - states[:, :-1]).transpose(0, 2).flatten(1)
            out_mean = torch.zeros(self.fields, dtype=torch.float64).repeat(self.target_steps)
            out_std = increments.std(1).repeat(self.target_steps)
        tiny = torch.finfo(torch.float32).tiny ** 0.5
        self.in_mean.copy_(in_mean)
        self.in_std.copy_(in_std.clamp_min(tiny))
        self.out_mean.copy_(out_mean)
        self.out_std.copy_(out_std.clamp_min(tiny))

    def to_network(self, x: torch.Tensor) -> torch.Tensor:
        """Resize a data-grid tensor ``(batch, c, *data_shape)`` to the network grid."""
        return resize(x, self.net_shape, self.resample)

    def to_data(self, x: torch.Tensor) -> torch.Tensor:
        """Resize a network-grid tensor ``(batch, c, *net_shape)`` back to the data grid."""
        return resize(x, self.data_shape, self.resample)

    def normalise(self, state: torch.Tensor) -> torch.Tensor:
        """The network's input for a state window at the network grid (physical units)."""
        shape = (1, -1) + (1,) * len(self.net_shape)
        return (state - self.in_mean.view(shape)) / self.in_std.view(shape)

    def step(self, state: torch.Tensor) -> torch.Tensor:
        """One network pass at the network grid: ``(b, in_channels, *net) → (b, out_channels,
        *net)`` in physical units."""
        shape = (1, -1) + (1,) * len(self.net_shape)
        out = self.network(self.normalise(state))
        out = out * self.out_std.view(shape) + self.out_mean.view(shape)
        if self.steady or self.physical_units:
            return out
        last = state[:, -self.fields:]
        return out + last.repeat(1, self.target_steps, *(1,) * len(self.net_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One-step prediction at the data grid: ``(b, in_channels, *data) → (b, out_channels,
        *data)``."""
        return self.to_data(self.step(self.to_network(x)))

    def rollout(
        self, x: torch.Tensor, steps: int, *, grad_last_only: bool = False
    ) -> torch.Tensor:
        """``steps`` autoregressive passes from the data-grid window ``x``.

        Returns ``(b, steps * out_channels, *data)``: every predicted state, time-major. With
        ``grad_last_only`` (pushforward) all but the last pass run without gradients.
        """
        state = self.to_network(x)
        predictions = []
        for k in range(steps):
            frozen = grad_last_only and k < steps - 1
            with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
                out = self.step(state)
            predictions.append(self.to_data(out))
            state = torch.cat([state, out], dim=1)[:, -state.shape[1]:]
        return torch.cat(predictions, dim=1)
