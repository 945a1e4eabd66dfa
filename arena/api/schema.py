"""The OpenAPI 3 description of every JSON endpoint, written here by hand.

``tests/arena/api/test_schema.py`` checks that it lists every URL pattern whose view is an
``api_view`` (and nothing else), with the scope the view asks for, and schemathesis checks the
live server's answers against it.
"""

from arena.core.access import SCOPES

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}
PROBLEMS = {
    "type": "object",
    "required": ["error", "problems"],
    "properties": {
        "error": {"type": "string"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "problem"],
                "properties": {"field": {"type": "string"}, "problem": {"type": "string"}},
            },
        },
    },
}
OBJECT = {"type": "object"}
TEXT = {"type": "string", "minLength": 1}
TURN = {
    "type": "object",
    "required": ["prompt", "answer_a", "answer_b"],
    "additionalProperties": False,
    "properties": {"prompt": TEXT, "answer_a": TEXT, "answer_b": TEXT},
}
TIME = {"type": "string", "format": "date-time"}
BATTLE = {
    "type": "object",
    "description": "A battle the arena did not generate, with its vote. Give either prompt, "
    "answer_a and answer_b, or turns. Contestants are named as stored (an unknown name is an "
    "error naming the field; nothing is created).",
    "required": ["key", "model_a", "model_b", "outcome"],
    "additionalProperties": False,
    "properties": {
        "key": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "description": "Idempotency key, per user: a battle sent again with it is not stored "
            "again.",
        },
        "model_a": TEXT,
        "model_b": TEXT,
        "prompt": TEXT,
        "answer_a": TEXT,
        "answer_b": TEXT,
        "turns": {"type": "array", "items": TURN, "minItems": 1},
        "outcome": {"type": "string", "enum": ["a", "b", "tie", "both_bad"]},
        "voter": {"type": "string", "maxLength": 200, "description": "The voter's label."},
        "category": {"type": "string", "description": "An existing category's slug."},
        "created_at": TIME,
        "voted_at": TIME,
    },
}
STORED = {
    "type": "object",
    "required": ["key", "battle", "created", "counted"],
    "properties": {
        "key": {"type": "string"},
        "battle": {"type": ["integer", "null"]},
        "created": {"type": "boolean"},
        "counted": {"type": "boolean"},
    },
}
BATCH_RESULT = {
    "type": "object",
    "required": ["stored", "duplicates", "battles"],
    "properties": {
        "stored": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "battles": {"type": "array", "items": STORED},
    },
}
TOKEN = {
    "type": "object",
    "required": ["id", "name", "prefix", "scopes", "created_at"],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "prefix": {"type": "string"},
        "scopes": {"type": "array", "items": {"type": "string", "enum": list(SCOPES)}},
        "created_at": TIME,
        "last_used_at": {"type": ["string", "null"], "format": "date-time"},
        "revoked_at": {"type": ["string", "null"], "format": "date-time"},
        "secret": {"type": "string", "description": "Only in the answer that creates it."},
    },
}
SNAPSHOT_META = {
    "type": "object",
    "required": ["id", "scope", "method", "csv", "json"],
    "properties": {"id": {"type": "integer"}, "csv": {"type": "string"}},
}
LEADERBOARD = {
    "type": "object",
    "required": ["snapshot", "results"],
    "properties": {
        "snapshot": SNAPSHOT_META,
        "results": {
            "type": "object",
            "description": "rows (model, rating, lower, upper, rank, ..., votes, wins, losses, "
            "ties), style, notes, models, votes_over_time",
        },
        "pictures": {
            "type": ["object", "null"],
            "description": "battle-count, observed and predicted pairwise matrices",
        },
    },
}
RUN = {
    "type": "object",
    "required": ["id", "status", "total", "done"],
    "properties": {
        "id": {"type": "integer"},
        "status": {"type": "string"},
        "total": {"type": "integer"},
        "done": {"type": "integer"},
    },
}


def _query(name: str, description: str, enum=None) -> dict:
    schema: dict = {"type": "string"}
    if enum:
        schema["enum"] = enum
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _path_id(name: str) -> dict:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
    }


# Which board: the query of the leaderboard reads.
BOARD_CHOICE = [
    _query("scope", "human (default) or judge", ["human", "judge"]),
    _query("judge", "a judge's name (scope=judge)"),
    _query("category", "a category's slug"),
    _query("style", "1: style-controlled", ["0", "1"]),
]

# (url name, path, method, scope, staff, summary, parameters, request body, {status: schema})
OPERATIONS = [
    (
        "api_leaderboard",
        "/api/leaderboards/",
        "get",
        "read",
        False,
        "The latest complete leaderboard snapshot of one scope, with its pairwise matrices",
        BOARD_CHOICE,
        None,
        {200: LEADERBOARD, 400: ERROR, 404: ERROR},
    ),
    (
        "leaderboard_status",
        "/leaderboard/status.json",
        "get",
        "read",
        False,
        "Whether the board of one choice exists and whether a newer one is being computed",
        BOARD_CHOICE,
        None,
        {
            200: {
                "type": "object",
                "required": ["snapshot", "completed_at", "n_votes", "refresh"],
                "properties": {
                    "snapshot": {"type": ["integer", "null"]},
                    "completed_at": {"type": ["string", "null"]},
                    "n_votes": {"type": ["integer", "null"]},
                    "refresh": {
                        "type": "string",
                        "enum": ["", "running", "queued", "first"],
                    },
                },
            },
            400: ERROR,
        },
    ),
    (
        "api_snapshots",
        "/api/leaderboards/snapshots/",
        "get",
        "read",
        False,
        "Every complete snapshot's metadata",
        [],
        None,
        {
            200: {
                "type": "object",
                "required": ["snapshots"],
                "properties": {"snapshots": {"type": "array", "items": SNAPSHOT_META}},
            }
        },
    ),
    (
        "calibration_api",
        "/api/calibration/",
        "get",
        "read",
        False,
        "The judges' calibration reports (202 while one is first computed)",
        [_query("judge", "one judge's name")],
        None,
        {200: OBJECT, 202: OBJECT, 404: ERROR},
    ),
    (
        "calibration_progress",
        "/api/calibration/progress/",
        "get",
        "read",
        False,
        "How far the calibration reports being computed are",
        [_query("judge", "one judge's name")],
        None,
        {200: OBJECT, 404: ERROR},
    ),
    (
        "run_progress",
        "/runs/{run_id}.json",
        "get",
        "read",
        False,
        "Progress of an answer-generation or judge run",
        [_path_id("run_id")],
        None,
        {200: RUN, 404: ERROR},
    ),
    (
        "judge_run_json",
        "/judge/runs/{run_id}.json",
        "get",
        "read",
        True,
        "A judge run with its statistics (staff)",
        [_path_id("run_id")],
        None,
        {200: OBJECT, 404: ERROR},
    ),
    (
        "api_battle",
        "/api/battles/",
        "post",
        "vote",
        False,
        "Store one external battle and its vote (201; 200 when its key was stored before)",
        [],
        BATTLE,
        {200: STORED, 201: STORED, 400: PROBLEMS},
    ),
    (
        "api_battle_batch",
        "/api/battles/batch/",
        "post",
        "vote",
        False,
        "Store up to ARENA_API_MAX_BATCH external battles, all or nothing",
        [],
        {
            "type": "object",
            "required": ["records"],
            "additionalProperties": False,
            "properties": {"records": {"type": "array", "items": BATTLE, "minItems": 1}},
        },
        {200: BATCH_RESULT, 201: BATCH_RESULT, 400: PROBLEMS},
    ),
    (
        "api_tokens",
        "/api/tokens/",
        "get",
        "read",
        False,
        "Your API tokens (prefixes only)",
        [],
        None,
        {
            200: {
                "type": "object",
                "required": ["tokens"],
                "properties": {"tokens": {"type": "array", "items": TOKEN}},
            }
        },
    ),
    (
        "api_token_new",
        "/api/tokens/new/",
        "post",
        "admin",
        False,
        "Create a token; its secret is in this answer only",
        [],
        {
            "type": "object",
            "required": ["name", "scopes"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 100},
                "scopes": {"type": "array", "items": {"type": "string", "enum": list(SCOPES)}},
            },
        },
        {201: TOKEN, 400: ERROR},
    ),
    (
        "api_token_revoke",
        "/api/tokens/{token_id}/revoke/",
        "post",
        "admin",
        False,
        "Revoke one of your tokens",
        [_path_id("token_id")],
        None,
        {200: TOKEN, 404: ERROR},
    ),
]

# Any operation may be refused: 400 for a NUL in the query string (arena.core.nul), then
# authentication, scope, method and rate limit.
REFUSED = {400: ERROR, 401: ERROR, 403: ERROR, 405: OBJECT, 429: ERROR}


def operations() -> list[dict]:
    keys = ("name", "path", "method", "scope", "staff", "summary")
    return [dict(zip(keys, op[:6], strict=True)) for op in OPERATIONS]


def openapi(server: str) -> dict:
    paths: dict = {}
    for name, path, method, scope, staff, summary, parameters, body, answers in OPERATIONS:
        responses = {
            str(status): {
                "description": "error" if status >= 400 else "ok",
                "content": {"application/json": {"schema": schema}},
            }
            for status, schema in {**REFUSED, **answers}.items()
        }
        operation = {
            "operationId": name,
            "summary": summary,
            "description": f"Token scope: {scope}" + (" (staff accounts only)." if staff else "."),
            "parameters": parameters,
            "responses": responses,
            "security": [{"bearer": []}, {"session": []}],
        }
        if body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": body}},
            }
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Arena API",
            "version": "1",
            "description": "Boards, snapshots, pairwise matrices, calibration, judge runs, "
            "external battles and tokens. Authenticate with Authorization: Bearer <token> "
            "(create one at /account/tokens/) or a signed-in session.",
        },
        "servers": [{"url": server}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "sessionid"},
            }
        },
    }
