"""The simulation places exactly the paper's quantizers, per layer, and refuses bad requests."""

from __future__ import annotations

import itertools

import pytest
import torch
from aimet_torch.quantization.base import QuantizerBase
from torch import nn

from autoq.bits import Scheme
from autoq.errors import QuantizationError
from autoq.models import FNOConfig, TransformerConfig, UNetConfig, build_model
from autoq.precision import SCHEMES, TrialConfig, quantizable_layers
from autoq.quant import QuantizedMatMul, QuantizedSpectralConv, build_sim, calibrate

TINY = {
    "fno": FNOConfig(width=8, modes=4, layers=2, projection_width=16),
    "unet": UNetConfig(width=4, levels=2, norm_groups=2),
    "transformer": TransformerConfig(width=8, heads=2, layers=2, patch=4, feed_forward_width=16),
}
CASES = [("fno", 1), ("unet", 1), ("transformer", 1), ("fno", 2), ("transformer", 2)]
MIXED_BITS = [(8, 8), (4, 8), None, (16, 16), (2, 4), (4, 4)]


def tiny_network(arch: str, spatial_dims: int, *, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(TINY[arch], spatial_dims=spatial_dims, in_channels=2, out_channels=1)


def inputs(spatial_dims: int, *, batch: int = 4, seed: int = 1) -> torch.Tensor:
    size = 32 if spatial_dims == 1 else 16
    return torch.randn(batch, 2, *(size,) * spatial_dims,
                       generator=torch.Generator().manual_seed(seed))


def mixed_config(network: nn.Module) -> TrialConfig:
    layers = quantizable_layers(network)
    return TrialConfig.for_model(network, scale=1.0,
                                 bits=dict(zip(layers, itertools.cycle(MIXED_BITS))))


def expected_quantizers(module: nn.Module, bits: tuple[int, int], scheme: Scheme = "paper"
                        ) -> dict[str, tuple[int, bool]]:
    """``slot → (bitwidth, symmetric)`` the scheme puts on one layer: the paper's quantizes
    weights and inputs, the integer scheme the output too."""
    weight_bits, act_bits = bits
    output = {"output:0": (act_bits, False)} if scheme == "integer" else {}
    if isinstance(module, QuantizedMatMul):
        return {"input:0": (act_bits, False), "input:1": (weight_bits, True), **output}
    if isinstance(module, QuantizedSpectralConv):
        return {"weight:weight_real": (weight_bits, True),
                "weight:weight_imag": (weight_bits, True), "input:0": (act_bits, False),
                **output}
    return {"weight:weight": (weight_bits, True), "input:0": (act_bits, False), **output}


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize(("arch", "spatial_dims"), CASES)
def test_sim_places_exactly_the_asked_quantizers(arch: str, spatial_dims: int, scheme: Scheme
                                                 ) -> None:
    network = tiny_network(arch, spatial_dims)
    mixed = mixed_config(network)
    config = TrialConfig(scale=mixed.scale, bits=mixed.bits, scheme=scheme)
    qnet = build_sim(network, config, dummy_input=inputs(spatial_dims, batch=1))
    modules = dict(qnet.model.named_modules())

    found: dict[str, dict[str, tuple[int, bool]]] = {}
    for layer, slot, quantizer in qnet.quantizers():
        assert quantizer.shape == ()  # per tensor
        found.setdefault(layer, {})[slot] = (quantizer.bitwidth, quantizer.symmetric)
    expected = {layer: expected_quantizers(modules[layer], bits, scheme)
                for layer, bits in config.quantized_layers.items()}
    assert found == expected
    assert any(bits is None for bits in config.bits.values())
    # Nothing else anywhere: every quantizer module in the network belongs to a listed slot.
    all_quantizers = [name for name, m in qnet.model.named_modules()
                      if isinstance(m, QuantizerBase)]
    assert len(all_quantizers) == sum(len(slots) for slots in expected.values())
    outputs = [name for name in all_quantizers if ".output_quantizers." in name]
    assert len(outputs) == (len(config.quantized_layers) if scheme == "integer" else 0)


@pytest.mark.parametrize(("arch", "layer"), [("fno", "blocks.1.spectral"),
                                             ("transformer", "blocks.1.attention.query_product")])
def test_sim_one_layers_bits_change_that_layer_and_nothing_before(arch: str, layer: str) -> None:
    network = tiny_network(arch, 1)
    x = inputs(1)
    outputs = []
    for bits in ((8, 8), (4, 4)):
        config = TrialConfig.uniform(network, scale=1.0, weight_bits=8, act_bits=8)
        config = TrialConfig(scale=1.0, bits={**config.bits, layer: bits})
        qnet = build_sim(network, config, dummy_input=x[:1], calibration="min_max")
        calibrate(qnet, [x])
        outputs.append(_record_outputs(qnet.model, x, layer))
    (before_8, at_8), (before_4, at_4) = outputs
    assert before_8.keys() == before_4.keys() and len(before_8) >= 3
    for name in before_8:
        torch.testing.assert_close(before_8[name], before_4[name], rtol=0, atol=0, msg=name)
    assert not torch.allclose(at_8, at_4, rtol=1e-3, atol=1e-6)


def _record_outputs(
    model: nn.Module, x: torch.Tensor, layer: str
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Outputs of every module that finished before ``layer`` started, and ``layer``'s output."""
    before: dict[str, torch.Tensor] = {}
    started = []
    at: list[torch.Tensor] = []

    def record(name: str):
        def hook(_module, _inputs, output):
            if name == layer:
                at.append(output.detach().clone())
            elif not started and isinstance(output, torch.Tensor):
                before[name] = output.detach().clone()
        return hook

    target = model.get_submodule(layer)
    handles = [target.register_forward_pre_hook(lambda *_: started.append(True))]
    handles += [m.register_forward_hook(record(name)) for name, m in model.named_modules()
                if name and not isinstance(m, QuantizerBase)]
    with torch.no_grad():
        model(x)
    for handle in handles:
        handle.remove()
    return before, at[0]


def test_sim_unknown_layer_is_refused_by_name() -> None:
    network = tiny_network("fno", 1)
    config = TrialConfig(scale=1.0, bits={"blocks.7.spectral": (8, 8)})
    with pytest.raises(QuantizationError, match=r"blocks\.7\.spectral"):
        build_sim(network, config, dummy_input=inputs(1, batch=1))


def test_sim_non_matmul_module_is_refused_by_name() -> None:
    network = tiny_network("fno", 1)
    config = TrialConfig(scale=1.0, bits={"blocks.0.activation": (8, 8)})
    with pytest.raises(QuantizationError, match=r"blocks\.0\.activation"):
        build_sim(network, config, dummy_input=inputs(1, batch=1))


@pytest.mark.parametrize(("bits", "bad"), [((1, 8), 1), ((8, 33), 33)])
def test_sim_bitwidth_outside_2_to_32_is_refused_by_name(bits: tuple[int, int], bad: int) -> None:
    network = tiny_network("fno", 1)
    with pytest.raises(QuantizationError, match=rf"blocks\.0\.spectral.*got {bad}$"):
        build_sim(network, TrialConfig.for_model(network, scale=1.0,
                                                 bits={"blocks.0.spectral": bits}),
                  dummy_input=inputs(1, batch=1))


def test_sim_unknown_calibration_is_refused() -> None:
    network = tiny_network("fno", 1)
    config = TrialConfig.uniform(network, scale=1.0, weight_bits=8, act_bits=8)
    with pytest.raises(QuantizationError, match="calibration"):
        build_sim(network, config, dummy_input=inputs(1, batch=1), calibration="magic")


def test_calibrate_without_batches_is_refused() -> None:
    network = tiny_network("fno", 1)
    config = TrialConfig.uniform(network, scale=1.0, weight_bits=8, act_bits=8)
    qnet = build_sim(network, config, dummy_input=inputs(1, batch=1))
    with pytest.raises(QuantizationError, match="at least one batch"):
        calibrate(qnet, [])


def test_sim_leaves_the_float_network_untouched() -> None:
    network = tiny_network("transformer", 1)
    x = inputs(1)
    with torch.no_grad():
        before = network(x)
    config = TrialConfig.uniform(network, scale=1.0, weight_bits=4, act_bits=4)
    qnet = build_sim(network, config, dummy_input=x[:1])
    calibrate(qnet, [x])
    assert quantizable_layers(network) == quantizable_layers(qnet.model)
    assert not any(isinstance(m, QuantizerBase) for m in network.modules())
    with torch.no_grad():
        torch.testing.assert_close(network(x), before)
        assert not torch.allclose(qnet.model(x), before, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_sim_runs_on_the_networks_device() -> None:
    network = tiny_network("transformer", 1).cuda()
    x = inputs(1).cuda()
    config = TrialConfig.uniform(network, scale=1.0, weight_bits=8, act_bits=8)
    qnet = build_sim(network, config, dummy_input=x[:1])
    calibrate(qnet, [x.cpu()])
    assert all(p.is_cuda for p in qnet.model.parameters())
    assert qnet.model(x).is_cuda
