"""The autoq service: REST API, job queue and workers on the search's own database."""
