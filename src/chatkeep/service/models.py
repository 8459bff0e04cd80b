"""`GET /v1/models/{model}`: a model this server answers for, or 404."""

from __future__ import annotations

from chatkeep.protocol.responses import Model
from chatkeep.service.completions import ModelRouter


def retrieve_model(router: ModelRouter, name: str) -> Model:
    for model in router.models():
        if model["id"] == name:
            return model
    # A name served by a pattern (or by the echo model, which answers any name) is real too.
    backend = router.backend_for(name)
    return {"id": name, "object": "model", "created": 0, "owned_by": backend.name}
