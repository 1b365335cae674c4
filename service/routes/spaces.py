"""The bundled search spaces (``search_spaces/*.yaml``)."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import SettingsDep
from service.schemas import SearchSpacePublic, SearchSpacesPublic
from service.specs import load_bundled

router = APIRouter(prefix="/search-spaces", tags=["search spaces"])


@router.get("")
def list_search_spaces(settings: SettingsDep) -> SearchSpacesPublic:
    """Every bundled search space, by the name ``POST /searches`` takes as ``space``."""
    spaces = [SearchSpacePublic(name=name, description=spec.description,
                                pde=spec.data.pde or spec.data.layout, arch=spec.model.title,
                                trials=spec.search.trials, spec=spec.model_dump(mode="json"))
              for name, spec in load_bundled(settings.search_spaces).items()]
    return SearchSpacesPublic(data=spaces, count=len(spaces))
