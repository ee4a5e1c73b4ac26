"""A reference web service that embeds pamlib.

``uvicorn pamlib_service:app`` serves it, configured by ``PAMLIB_SERVICE_*`` environment
variables (see the README). FHIR QuestionnaireResponses come in; scores, levels, pathways and
reassessment dates are stored; trajectories, overdue reassessments and a suppressed cohort
summary go out — each caller seeing its own site only.
"""

from __future__ import annotations

from pamlib_service.app import create_app
from pamlib_service.config import Settings

__all__ = ["Settings", "app", "create_app"]

#: The application ``uvicorn pamlib_service:app`` runs; it reads the environment at start-up.
app = create_app()
