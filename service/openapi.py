"""The OpenAPI 3.1 description of /api/v1; the tests check real answers against these schemas."""

from __future__ import annotations

from typing import Any

BOX = {
    "type": "array",
    "items": {"type": "integer"},
    "minItems": 4,
    "maxItems": 4,
    "description": "x, y, width, height",
}

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Stable, for programs.",
                    "examples": ["no_face", "unsupported_format", "upload_too_large"],
                },
                "message": {"type": "string", "description": "A sentence a person can act on."},
            },
        },
        "faces_detected": {"type": "integer", "minimum": 0},
        "faces": {"type": "array", "items": {"$ref": "#/components/schemas/Face"}},
    },
}

FACE = {
    "type": "object",
    "required": ["box", "score"],
    "properties": {"box": BOX, "score": {"type": "number", "description": "Detector score."}},
    "additionalProperties": False,
}

RESULT = {
    "type": "object",
    "required": ["dataset", "title", "verdict", "confidence"],
    "properties": {
        "dataset": {"type": "string"},
        "title": {"type": "string"},
        "verdict": {"type": "string", "enum": ["match", "possible", "no_match"]},
        "confidence": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": "Estimated probability that the dataset holds a photo of this person, two decimals.",
        },
    },
    "additionalProperties": False,
}

INDEX = {
    "type": "object",
    "required": ["embedder", "model", "version", "datasets", "faces"],
    "properties": {
        "embedder": {"type": "string", "enum": ["dlib", "insightface"]},
        "model": {"type": "string"},
        "version": {"type": "integer", "description": "Changes with every write to the index."},
        "datasets": {"type": "integer"},
        "faces": {"type": "integer"},
    },
    "additionalProperties": False,
}

CHECK = {
    "type": "object",
    "required": ["faces_detected", "faces", "face", "results", "error", "index"],
    "properties": {
        "faces_detected": {"type": "integer", "minimum": 1},
        "faces": {"type": "array", "items": {"$ref": "#/components/schemas/Face"}},
        "face": {
            "type": "object",
            "required": ["number", "box", "quality"],
            "properties": {
                "number": {"type": "integer", "minimum": 0},
                "box": BOX,
                "quality": {
                    "type": "string",
                    "enum": ["good", "low"],
                    "description": "low: the face is small or blurred, so a 'no_match' is less certain.",
                },
            },
            "additionalProperties": False,
        },
        "results": {"type": "array", "items": {"$ref": "#/components/schemas/Result"}},
        "error": {"type": "null"},
        "index": {"$ref": "#/components/schemas/Index"},
    },
    "additionalProperties": False,
}

DATASET = {
    "type": "object",
    "required": ["name", "title", "faces"],
    "properties": {
        "name": {"type": "string"},
        "title": {"type": "string"},
        "description": {"type": ["string", "null"]},
        "disclosure_url": {"type": ["string", "null"]},
        "removal_url": {"type": ["string", "null"]},
        "date": {"type": ["string", "null"]},
        "license": {"type": ["string", "null"]},
        "faces": {"type": "integer"},
    },
    "additionalProperties": False,
}

DATASETS = {
    "type": "object",
    "required": ["index", "thresholds", "datasets"],
    "properties": {
        "index": {"$ref": "#/components/schemas/Index"},
        "thresholds": {
            "type": "object",
            "required": ["match", "possible", "prior", "method"],
            "properties": {
                "method": {"type": "string"},
                "prior": {"type": "number"},
                "match": {"type": "number"},
                "possible": {"type": "number"},
                "fitted_on": {"type": ["string", "null"]},
                "assumed": {"type": "boolean"},
            },
        },
        "datasets": {"type": "array", "items": {"$ref": "#/components/schemas/Dataset"}},
    },
}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _error(description: str) -> dict[str, Any]:
    return _json("Error", description)


def openapi_document(config: dict[str, Any]) -> dict[str, Any]:
    limit_mb = config.get("MAX_UPLOAD_MB", 15)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "photocheck",
            "version": "1",
            "description": (
                "Check whether photos of a face are in disclosed AI training sets. The photo is read in memory, "
                "answered and forgotten: nothing about it is stored or logged. Answers hold dataset-level facts only."
            ),
        },
        "paths": {
            "/api/v1/check": {
                "post": {
                    "operationId": "check",
                    "summary": "Check one photo against every dataset in the index",
                    "parameters": [
                        {
                            "name": "face",
                            "in": "query",
                            "required": False,
                            "description": "With a raw image body: which face to check (0 = the largest).",
                            "schema": {"type": "integer", "minimum": 0},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["image"],
                                    "properties": {
                                        "image": {"type": "string", "format": "binary"},
                                        "face": {
                                            "type": "integer",
                                            "minimum": 0,
                                            "description": "0 = the largest face",
                                        },
                                    },
                                }
                            },
                            "image/*": {"schema": {"type": "string", "format": "binary"}},
                        },
                    },
                    "responses": {
                        "200": _json("CheckAnswer", "Per dataset, a verdict and a confidence."),
                        "400": _error("Malformed request, or an image that cannot be read."),
                        "413": _error(f"Upload over {limit_mb} MB, or an image with too many pixels."),
                        "415": _error("Not an image format photocheck reads (PDF, SVG, ...)."),
                        "422": _error("No face, a face too small to judge, or no such face number."),
                        "429": _error("Rate limit reached; see the Retry-After header."),
                        "503": _error("The index is not loaded yet."),
                    },
                }
            },
            "/api/v1/datasets": {
                "get": {
                    "operationId": "datasets",
                    "summary": "The datasets, their disclosure and removal links, and the verdict thresholds",
                    "responses": {"200": _json("Datasets", "What the index holds."), "503": _error("Not loaded.")},
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
                }
            },
        },
        "components": {
            "schemas": {
                "Face": FACE,
                "Result": RESULT,
                "Index": INDEX,
                "CheckAnswer": CHECK,
                "Dataset": DATASET,
                "Datasets": DATASETS,
                "Error": ERROR,
            }
        },
    }
