"""The REST routes, one module per resource, combined into the ``/api/v1`` router."""

from fastapi import APIRouter

from service.routes import health, searches, spaces

api_router = APIRouter()
api_router.include_router(searches.router)
api_router.include_router(spaces.router)

__all__ = ["api_router", "health"]
