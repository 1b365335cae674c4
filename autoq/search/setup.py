"""From a validated spec to what a search runs on: the data file, its geometry, the problem."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from autoq.data import get_family, read_pde_file
from autoq.errors import DataError
from autoq.search.spec import SearchSpec
from autoq.train import Problem, load_problem


@dataclass(frozen=True)
class Geometry:
    """Shapes the cost model needs, known without training anything.

    Attributes:
        data_shape: spatial shape of the data grid.
        in_channels: network input channels (input steps × fields, or coefficient channels).
        out_channels: network output channels (target steps × fields).
    """

    data_shape: tuple[int, ...]
    in_channels: int
    out_channels: int


def ensure_data(spec: SearchSpec, *, progress: bool = True) -> Path:
    """The spec's data file; generated with autoq's solver first if it is missing and the spec
    says how. A missing file with no ``generate`` block is a DataError naming the path."""
    path = Path(spec.data.path)
    if path.is_file():
        return path
    if spec.data.generate is None:
        raise DataError(f"data file not found: {path} (add a data.generate block to make it "
                        f"with autoq's {spec.data.pde} solver, or point data.path at your file)")
    recipe = spec.data.generate
    family = get_family(spec.data.pde)
    options = dict(recipe.options)
    if recipe.frames is not None:
        options["frames"] = recipe.frames
    with tqdm(total=recipe.samples, desc=f"generating {path.name}", unit="sample",
              disable=not progress) as bar:
        return family.generate(path, samples=recipe.samples, resolution=recipe.resolution,
                               seed=recipe.seed, progress=bar, **options)


def geometry(spec: SearchSpec) -> Geometry:
    """The spec's shapes: read from the data file when it exists, else from the generation
    recipe or the public defaults."""
    family = get_family(spec.data.pde)
    path = Path(spec.data.path)
    if path.is_file():
        data = read_pde_file(path, spec.data.pde)
        shape, fields = data.spatial_shape, data.fields
        coefficient_channels = 0 if data.coefficients is None else data.coefficients.shape[-1]
    else:
        recipe = spec.data.generate
        resolution = (recipe.resolution if recipe and recipe.resolution
                      else family.default_resolution)
        shape, fields = (resolution,) * family.spatial_dims, family.fields
        coefficient_channels = family.coefficient_channels
    if coefficient_channels:
        return Geometry(shape, coefficient_channels, fields)
    return Geometry(shape, spec.data.input_steps * fields, spec.data.target_steps * fields)


def load_spec_problem(spec: SearchSpec, *, progress: bool = True) -> Problem:
    """The spec's learning problem, generating its data file first if needed."""
    path = ensure_data(spec, progress=progress)
    return load_problem(path, pde=spec.data.pde, input_steps=spec.data.input_steps,
                        target_steps=spec.data.target_steps, split_seed=spec.data.split_seed)
