"""The OpenAPI 3.1 description of /api/v1; the tests check real answers against these schemas."""

from __future__ import annotations

from typing import Any

from indexer.template import MAX_PHOTOS

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
        "max_images": {"type": "integer", "description": "With too_many_images: the most photos a bulk request takes."},
        "photos": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/Photo"},
            "description": "A check's photos, in order: what was found in each, and each one's own error.",
        },
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

FACE_USED = {
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
}

PHOTO_ERROR = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
    "additionalProperties": False,
}

PHOTO = {
    "type": "object",
    "description": "One of the photos sent, in the order sent: its faces, the face used, or why it was not used.",
    "required": ["faces_detected", "faces", "face", "error"],
    "properties": {
        "faces_detected": {"type": "integer", "minimum": 0},
        "faces": {"type": "array", "items": {"$ref": "#/components/schemas/Face"}},
        "face": {"oneOf": [{"type": "null"}, FACE_USED]},
        "error": {
            "oneOf": [{"type": "null"}, PHOTO_ERROR],
            "description": "Why this photo was not used (no_face, same_photo, ...); the other photos were.",
        },
        "differs_from": {
            "type": "array",
            "items": {"type": "integer", "minimum": 0},
            "description": "With not_same_person: the photos (numbered from 0) this one does not look like.",
        },
    },
    "additionalProperties": False,
}

QUALITY = {
    "type": ["string", "null"],
    "enum": ["good", "low", None],
    "description": (
        "How the answer judged the faces: low when at least half of the photos used are small or blurred "
        "(for one photo, its face's quality), so a 'no_match' is less certain; null without an answer."
    ),
}

CHECK = {
    "type": "object",
    "required": ["faces_detected", "faces", "face", "quality", "photos", "results", "error", "index"],
    "properties": {
        "faces_detected": {"type": "integer", "minimum": 1, "description": "In the first photo used."},
        "faces": {"type": "array", "items": {"$ref": "#/components/schemas/Face"}},
        "face": {**FACE_USED, "description": "The face used in the first photo used."},
        "quality": QUALITY,
        "photos": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/Photo"},
            "minItems": 1,
            "maxItems": MAX_PHOTOS,
            "description": "Each photo sent, in order. The photos used were searched together, as one person.",
        },
        "results": {"type": "array", "items": {"$ref": "#/components/schemas/Result"}},
        "error": {"type": "null"},
        "index": {"$ref": "#/components/schemas/Index"},
    },
    "additionalProperties": False,
}

TEXT = {"type": "string", "minLength": 1}
COUNT = {"type": "integer", "minimum": 1}

SOURCES = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["title", "url"],
        "properties": {"title": TEXT, "url": {"type": "string", "format": "uri"}},
        "additionalProperties": False,
    },
    "description": "Where the facts come from.",
}

_ENTRY_PROPERTIES = {
    "name": {"type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$", "description": "index add --catalog NAME"},
    "title": TEXT,
    "year": {"type": "integer"},
    "images": COUNT,
    "videos": COUNT,
    "identities": COUNT,
    "description": TEXT,
    "photo_source": {**TEXT, "description": "Where the photos came from."},
    "distribution": {**TEXT, "description": "How the set is handed out, and where copies circulate."},
    "terms": TEXT,
    "maintainer": TEXT,
    "contact": {**TEXT, "description": "An email address or URL the maintainer publishes."},
    "page": {"type": "string", "format": "uri", "description": "Where the set is described."},
    "search_url": {"type": "string", "format": "uri", "description": "Where a person can look themselves up."},
    "sources": SOURCES,
}

CATALOG_ENTRY = {
    "type": "object",
    "description": "A disclosed face dataset, as photocheck's catalog describes it.",
    "required": [
        "name",
        "title",
        "year",
        "description",
        "photo_source",
        "distribution",
        "terms",
        "status",
        "status_note",
        "maintainer",
        "page",
        "removal",
        "disclosed",
        "sources",
    ],
    "properties": {
        **_ENTRY_PROPERTIES,
        "status": {"type": "string", "enum": ["distributed", "restricted", "withdrawn", "withdrawn_circulating"]},
        "status_note": TEXT,
        "removal": {
            "type": "object",
            "required": ["summary", "steps"],
            "properties": {
                "summary": TEXT,
                "url": {"type": "string", "format": "uri", "description": "The removal route, when there is one."},
                "steps": {"type": "array", "items": TEXT, "description": "Empty when there is no route."},
            },
            "additionalProperties": False,
        },
        "disclosed": {"const": True},
    },
    "additionalProperties": False,
}

EMBEDDING_REQUEST = {
    "type": "object",
    "required": ["embedding", "face"],
    "properties": {
        "embedding": {
            "type": "array",
            "items": {"type": "number"},
            "minItems": 128,
            "maxItems": 128,
            "description": (
                "The face's dlib embedding as the on-device check computes it (mean of the face and its mirror), "
                "L2-normalised; finite numbers only."
            ),
        },
        "face": {
            "type": "object",
            "required": ["size", "sharpness"],
            "properties": {
                "size": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "description": "The shorter side of the face's box, in pixels of the photo.",
                },
                "sharpness": {
                    "type": "number",
                    "minimum": 0,
                    "description": "Variance of the Laplacian of the face resampled to 96x96 (indexer/quality.py).",
                },
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}

UNDISCLOSED_ENTRY = {
    "type": "object",
    "description": "A face collection that was never published: it cannot be checked; what is known, and what to do.",
    "required": ["name", "title", "description", "photo_source", "distribution", "maintainer", "known", "route"],
    "properties": {**_ENTRY_PROPERTIES, "known": TEXT, "route": TEXT, "disclosed": {"const": False}},
    "additionalProperties": False,
}

REMEDY = {
    "type": "object",
    "description": "A right or remedy a person may have after a match. General information, not legal advice.",
    "required": ["name", "title", "kind", "where", "binds", "needs", "deadline", "notes", "sources"],
    "properties": {
        "name": {"type": "string", "examples": ["gdpr-access", "gdpr-erasure", "ccpa-delete", "bipa", "ftc-orders"]},
        "title": TEXT,
        "kind": {"type": "string", "enum": ["request", "lawsuit", "agency_order"]},
        "where": {"type": "array", "items": TEXT, "minItems": 1, "description": "Jurisdictions, e.g. EU/EEA."},
        "binds": TEXT,
        "needs": TEXT,
        "deadline": TEXT,
        "notes": TEXT,
        "orders": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "date", "summary"],
                "properties": {"name": TEXT, "date": {"type": "string", "format": "date"}, "summary": TEXT},
                "additionalProperties": False,
            },
        },
        "sources": SOURCES,
    },
    "additionalProperties": False,
}

CATALOG = {
    "type": "object",
    "required": ["updated", "notice", "datasets", "undisclosed", "remedies"],
    "properties": {
        "updated": {"type": "string", "description": "When the facts were gathered (YYYY-MM)."},
        "notice": {"type": "string", "description": "That this is general information, not legal advice."},
        "datasets": {"type": "array", "items": {"$ref": "#/components/schemas/CatalogEntry"}},
        "undisclosed": {"type": "array", "items": {"$ref": "#/components/schemas/UndisclosedEntry"}},
        "remedies": {"type": "array", "items": {"$ref": "#/components/schemas/Remedy"}},
    },
    "additionalProperties": False,
}

LOOKUP_RESULT = {
    "type": "object",
    "required": ["dataset", "title", "photos", "items", "searchable", "username_searchable"],
    "properties": {
        "dataset": {"type": "string"},
        "title": {"type": "string"},
        "photos": {
            "type": "integer",
            "minimum": 0,
            "description": "How many of the account's photos the dataset holds (0 or 1 for a photo): 0 is 'not in "
            "this dataset' when searchable is true.",
        },
        "items": {
            "type": "array",
            "maxItems": 1000,
            "description": "The photos, by id, with their Flickr page; at most 1,000 (photos counts them all).",
            "items": {
                "type": "object",
                "required": ["photo_id", "url"],
                "properties": {"photo_id": {"type": "string"}, "url": {"type": "string", "format": "uri"}},
                "additionalProperties": False,
            },
        },
        "searchable": {
            "type": "boolean",
            "description": "Whether the dataset's metadata holds this kind of identifier (owner NSIDs, usernames "
            "or photo ids); when false, photos 0 means 'cannot tell', not 'not in this dataset'.",
        },
        "username_searchable": {
            "type": "boolean",
            "description": "Whether the dataset's metadata names accounts by username (path alias or author name).",
        },
    },
    "additionalProperties": False,
}

LOOKUP = {
    "type": "object",
    "required": ["query", "results", "error"],
    "properties": {
        "query": {
            "type": "object",
            "required": ["kind", "value"],
            "properties": {
                "kind": {"type": "string", "enum": ["nsid", "username", "photo"]},
                "value": {"type": "string", "description": "The NSID, the username, or the photo id."},
            },
            "additionalProperties": False,
        },
        "results": {"type": "array", "items": {"$ref": "#/components/schemas/LookupResult"}},
        "error": {"type": "null"},
    },
    "additionalProperties": False,
}

EMBEDDING_ANSWER = {
    "type": "object",
    "required": ["face", "results", "error", "index"],
    "properties": {
        "face": {
            "type": "object",
            "required": ["quality"],
            "properties": {"quality": FACE_USED["properties"]["quality"]},
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
    "required": ["name", "title", "faces", "catalog"],
    "properties": {
        "name": {"type": "string"},
        "title": {"type": "string"},
        "description": {"type": ["string", "null"]},
        "disclosure_url": {"type": ["string", "null"]},
        "removal_url": {"type": ["string", "null"]},
        "date": {"type": ["string", "null"]},
        "license": {"type": ["string", "null"]},
        "faces": {"type": "integer"},
        "catalog": {
            "oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/CatalogEntry"}],
            "description": "The catalog entry the dataset was added with (index add --catalog), or null.",
        },
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
        "on_device": {
            "type": "object",
            "description": "Whether pages may check on the person's device (POST /api/v1/check-embedding).",
            "required": ["available", "reason", "download_bytes"],
            "properties": {
                "available": {"type": "boolean"},
                "reason": {
                    "enum": [None, "no_assets", "other_model"],
                    "description": "no_assets: installed without the on-device files; other_model: not a dlib index.",
                },
                "download_bytes": {
                    "type": ["integer", "null"],
                    "description": "What a browser's first on-device check downloads (runtime and models).",
                },
            },
            "additionalProperties": False,
        },
    },
}


EVIDENCE = {
    "type": "object",
    "description": "A matched entry of the dataset, named by the dataset's own metadata, for a removal request.",
    "required": ["key", "source_url", "photo_id", "license", "confidence"],
    "properties": {
        "key": {"type": "string", "description": "The entry's key in the dataset (its path or manifest key)."},
        "source_url": {"type": ["string", "null"]},
        "photo_id": {"type": ["string", "null"]},
        "license": {"type": ["string", "null"]},
        "confidence": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": "The confidence this entry alone would give; at least the 'possible' threshold.",
        },
    },
    "additionalProperties": False,
}

BULK_RESULT = {
    "type": "object",
    "required": ["dataset", "title", "verdict", "confidence"],
    "properties": {
        **RESULT["properties"],
        "evidence": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/Evidence"},
            "description": "Only for datasets added with --evidence: the matched entries, best first (at most 10).",
        },
    },
    "additionalProperties": False,
}

BULK_ITEM = {
    "type": "object",
    "required": ["id", "faces_detected", "faces", "face", "quality", "photos", "results", "error"],
    "properties": {
        "id": {"type": "string", "description": "The member's id: the filename of their photos' multipart parts."},
        "faces_detected": {"type": "integer", "minimum": 0},
        "faces": {"type": "array", "items": {"$ref": "#/components/schemas/Face"}},
        "face": {"oneOf": [{"type": "null"}, FACE_USED]},
        "quality": QUALITY,
        "photos": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/Photo"},
            "description": "The member's photos, in the order sent (empty with too_many_photos).",
        },
        "results": {"type": "array", "items": {"$ref": "#/components/schemas/BulkResult"}},
        "error": {
            "oneOf": [{"type": "null"}, PHOTO_ERROR],
            "description": (
                "This member's own error (no face, not an image, not_same_person, too_many_photos...); the other "
                "members are answered."
            ),
        },
    },
    "additionalProperties": False,
}

BULK = {
    "type": "object",
    "required": ["index", "results"],
    "properties": {
        "index": {"$ref": "#/components/schemas/Index"},
        "results": {"type": "array", "items": {"$ref": "#/components/schemas/BulkItem"}},
    },
    "additionalProperties": False,
}


FOREIGN_ORIGIN = "A page on another site that PHOTOCHECK_WIDGET_ORIGINS does not list (origin_not_allowed)."


def _json(schema: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _error(description: str) -> dict[str, Any]:
    return _json("Error", description)


def openapi_document(config: dict[str, Any]) -> dict[str, Any]:
    limit_mb = config.get("MAX_UPLOAD_MB", 15)
    check_mb = config.get("MAX_CHECK_MB", 40)
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
                    "summary": "Check 1 to 5 photos of one person against every dataset in the index",
                    "description": (
                        "Several photos of one person (each a multipart field 'image') are searched together and "
                        "get one answer, surer than any one photo gives; photos that do not look like one person "
                        "are refused (not_same_person). Each photo may have up to "
                        f"{limit_mb} MB; the rate limit counts photos."
                    ),
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
                                        "image": {
                                            "type": "array",
                                            "items": {"type": "string", "format": "binary"},
                                            "minItems": 1,
                                            "maxItems": MAX_PHOTOS,
                                            "description": "1 to 5 photos of one person, one field each.",
                                        },
                                        "face": {
                                            "type": "string",
                                            "pattern": "^[0-9]+(,[0-9]+)*$",
                                            "description": (
                                                "Which face to check, numbered from 0 (the largest): one number "
                                                "for every photo, or one per photo in their order (1,0,2)."
                                            ),
                                        },
                                    },
                                }
                            },
                            "image/*": {"schema": {"type": "string", "format": "binary"}},
                        },
                    },
                    "responses": {
                        "200": _json("CheckAnswer", "Per dataset, a verdict and a confidence."),
                        "400": _error(
                            "Malformed request, an image that cannot be read, or more than 5 photos (too_many_photos)."
                        ),
                        "413": _error(
                            f"A photo over {limit_mb} MB, photos over {check_mb} MB together, or an image with "
                            "too many pixels."
                        ),
                        "415": _error("Not an image format photocheck reads (PDF, SVG, ...)."),
                        "403": _error(FOREIGN_ORIGIN),
                        "422": _error(
                            "No face, a face too small to judge, or no such face number; with several photos, none "
                            "usable (no_usable_photo) or not one person (not_same_person)."
                        ),
                        "429": _error("Rate limit reached; see the Retry-After header."),
                        "503": _error("The index is not loaded yet."),
                    },
                }
            },
            "/api/v1/check-embedding": {
                "post": {
                    "operationId": "checkEmbedding",
                    "summary": "Check a face embedding computed on the person's device (the on-device check)",
                    "description": (
                        "The page's on-device mode finds, aligns and embeds the face in the browser and sends only "
                        "the embedding and the face's size and sharpness. The answer is the one /api/v1/check "
                        "gives for the photo: per dataset a verdict and a two-decimal confidence. It shares the "
                        "rate limit of /api/v1/check (one budget for both) and takes at most 4 KB."
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EmbeddingRequest"}}},
                    },
                    "responses": {
                        "200": _json("EmbeddingAnswer", "Per dataset, a verdict and a confidence."),
                        "400": _error(
                            "Not JSON, or not 128 finite numbers of length 1 and a face's size and sharpness."
                        ),
                        "403": _error(FOREIGN_ORIGIN),
                        "409": _error("The index was built with another embedder (on_device_unavailable)."),
                        "413": _error("A body over 4 KB."),
                        "422": _error("A face too small to judge (face_too_small)."),
                        "429": _error("Rate limit reached (shared with /api/v1/check); see the Retry-After header."),
                        "503": _error("The index is not loaded yet."),
                    },
                }
            },
            "/api/v1/bulk": {
                "post": {
                    "operationId": "bulk",
                    "summary": "Check many photos at once (API key needed)",
                    "description": (
                        "For organisations checking their members' photos, with their consent. Each photo is a "
                        "multipart field 'image' whose filename is its member's id; a member's photos (up to 5, "
                        "under the same id) are checked together as one person. The answer holds one result per "
                        "member, in the order sent, each with its own error if it could not be checked. Datasets added "
                        "with --evidence also name the matched entries' sources. Each key has its own rate limit, "
                        "counted in requests."
                    ),
                    "security": [{"apiKey": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["image"],
                                    "properties": {
                                        "image": {
                                            "type": "array",
                                            "items": {"type": "string", "format": "binary"},
                                            "minItems": 1,
                                            "maxItems": int(config.get("BULK_MAX_IMAGES", 20)),
                                        }
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json("BulkAnswer", "One answer per member, in the order sent."),
                        "400": _error(
                            "Malformed request: no photo, not multipart, a part without a filename, or more than "
                            f"{config.get('BULK_MAX_IMAGES', 20)} photos (too_many_images, with max_images)."
                        ),
                        "401": _error("No key, an unknown key or a revoked key (missing_key, bad_key, revoked_key)."),
                        "413": _error(f"Over {config.get('BULK_MAX_UPLOAD_MB', 100)} MB (upload_too_large)."),
                        "429": _error("This key's rate limit is reached; see the Retry-After header."),
                        "503": _error("The index is not loaded yet."),
                    },
                }
            },
            "/api/v1/datasets": {
                "get": {
                    "operationId": "datasets",
                    "summary": "The datasets, their disclosure and removal links, and the verdict thresholds",
                    "responses": {
                        "200": _json("Datasets", "What the index holds."),
                        "403": _error(FOREIGN_ORIGIN),
                        "503": _error("Not loaded."),
                    },
                }
            },
            "/api/v1/lookup": {
                "get": {
                    "operationId": "lookup",
                    "summary": "Which of a Flickr account's photos, or is a Flickr photo, in each dataset",
                    "description": (
                        "Looks the account or photo up in the datasets' own metadata (photo URLs, photo ids, owner "
                        "NSIDs, path aliases, author names), not by face. A username is found only in datasets "
                        "whose metadata holds usernames (username_searchable). The query is neither stored nor "
                        "logged; the answer names the account's own public photos and nothing else of any entry. "
                        "Rate-limited like checks."
                    ),
                    "parameters": [
                        {
                            "name": "flickr",
                            "in": "query",
                            "required": True,
                            "description": "A Flickr username, an NSID (12345678@N00), an account URL or a photo URL.",
                            "schema": {"type": "string", "maxLength": 300},
                        }
                    ],
                    "responses": {
                        "200": _json("Lookup", "Per dataset, how many of the account's photos it holds, and which."),
                        "400": _error("Not a Flickr username, NSID or URL (bad_flickr_query)."),
                        "403": _error(FOREIGN_ORIGIN),
                        "429": _error("Rate limit reached; see the Retry-After header."),
                        "503": _error("The index is not loaded yet."),
                    },
                }
            },
            "/api/v1/catalog": {
                "get": {
                    "operationId": "catalog",
                    "summary": "The catalog of disclosed face datasets, never-disclosed collections and remedies",
                    "description": "Ships with photocheck; answered whether or not an index is loaded.",
                    "responses": {
                        "200": _json("Catalog", "The whole catalog, with each entry's sources."),
                        "403": _error(FOREIGN_ORIGIN),
                    },
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
                "Photo": PHOTO,
                "EmbeddingRequest": EMBEDDING_REQUEST,
                "EmbeddingAnswer": EMBEDDING_ANSWER,
                "Dataset": DATASET,
                "Datasets": DATASETS,
                "Error": ERROR,
                "Evidence": EVIDENCE,
                "BulkResult": BULK_RESULT,
                "BulkItem": BULK_ITEM,
                "BulkAnswer": BULK,
                "CatalogEntry": CATALOG_ENTRY,
                "UndisclosedEntry": UNDISCLOSED_ENTRY,
                "Remedy": REMEDY,
                "Catalog": CATALOG,
                "LookupResult": LOOKUP_RESULT,
                "Lookup": LOOKUP,
            },
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key from `photocheck keys create`: 'Authorization: Bearer pck_...'.",
                }
            },
        },
    }
