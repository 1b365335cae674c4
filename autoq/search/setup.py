"""From a validated spec to what a search runs on: the data file, its geometry, the problem."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from tqdm import tqdm

from autoq.data import PDEData, get_family, read_data
from autoq.data.registry import DIRECTORY_LAYOUTS
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
        steady: a steady problem (coefficients → solution: no residual).
    """

    data_shape: tuple[int, ...]
    in_channels: int
    out_channels: int
    steady: bool = False


def data_present(spec: SearchSpec) -> bool:
    """Whether the spec's data exist: its file, or for a layout that reads a set of files
    (:data:`~autoq.data.registry.DIRECTORY_LAYOUTS`) a directory that is not empty."""
    path = Path(spec.data.path)
    if path.is_dir():
        return spec.data.layout in DIRECTORY_LAYOUTS and any(path.iterdir())
    return path.is_file()


def ensure_data(spec: SearchSpec, *, progress: bool = True) -> Path:
    """The spec's data file (or file set); generated with autoq's solver first if it is
    missing and the spec says how. Missing data with no ``generate`` block is a DataError
    naming the path."""
    path = Path(spec.data.path)
    if data_present(spec):
        return path
    if spec.data.generate is None or spec.data.pde is None:
        how = (f"add a data.generate block to make it with autoq's {spec.data.pde} solver, or "
               if spec.data.pde is not None else "")
        raise DataError(f"data file not found: {path} ({how}point data.path at your file in "
                        f"layout {spec.data.layout!r})")
    recipe = spec.data.generate
    family = get_family(spec.data.pde)
    options = dict(recipe.options)
    if recipe.frames is not None:
        options["frames"] = recipe.frames
    with tqdm(total=recipe.samples, desc=f"generating {path.name}", unit="sample",
              disable=not progress) as bar:
        return family.generate(path, samples=recipe.samples, resolution=recipe.resolution,
                               seed=recipe.seed, progress=bar, **options)


def read_spec_data(spec: SearchSpec, *, max_samples: int | None = None) -> PDEData:
    """The part of the spec's data file its selection names, read in its layout (the file must
    exist); ``max_samples`` caps the samples further (shapes need only one)."""
    selection = spec.data.selection
    if max_samples is not None:
        cap = max_samples if selection.max_samples is None else min(max_samples,
                                                                    selection.max_samples)
        selection = replace(selection, max_samples=cap)
    return read_data(spec.data.path, spec.data.layout, selection=selection,
                     **spec.data.read_options)


def geometry(spec: SearchSpec) -> Geometry:
    """The spec's shapes: read from the data file when it exists (one sample of it, with the
    spec's strides), else from the generation recipe or the public defaults."""
    path = Path(spec.data.path)
    if data_present(spec):
        data = read_spec_data(spec, max_samples=1)
        shape, fields = data.spatial_shape, data.fields
        coefficient_channels = 0 if data.coefficients is None else data.coefficients.shape[-1]
    elif spec.data.pde is not None:
        family = get_family(spec.data.pde)
        recipe = spec.data.generate
        resolution = (recipe.resolution if recipe and recipe.resolution
                      else family.default_resolution)
        points = len(range(0, resolution, spec.data.space_stride))
        shape, fields = (points,) * family.spatial_dims, family.fields
        coefficient_channels = family.coefficient_channels
    else:
        raise DataError(f"data file not found: {path} (layout {spec.data.layout!r} has no "
                        f"generator, so its shapes come from the file)")
    if coefficient_channels:
        return Geometry(shape, coefficient_channels, fields, steady=True)
    return Geometry(shape, spec.data.input_steps * fields, spec.data.target_steps * fields)


def load_spec_problem(spec: SearchSpec, *, progress: bool = True) -> Problem:
    """The spec's learning problem (its layout, the part of the file its selection names),
    generating its data file first if needed."""
    path = ensure_data(spec, progress=progress)
    return load_problem(path, layout=spec.data.layout, selection=spec.data.selection,
                        options=spec.data.read_options, input_steps=spec.data.input_steps,
                        target_steps=spec.data.target_steps, split_seed=spec.data.split_seed)
