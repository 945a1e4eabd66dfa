"""Push a batch of external battles to the arena, then read the human leaderboard.

    ARENA_URL=http://127.0.0.1:8000 ARENA_TOKEN=arena_... python examples/push_battles.py A B

A and B are two contestants' names as the arena knows them. The token needs the `vote` and
`read` scopes (create one at /account/tokens/ or with `manage.py tokens create`).
"""

import os
import sys
import uuid

import httpx

url, token = os.environ["ARENA_URL"], os.environ["ARENA_TOKEN"]
model_a, model_b = sys.argv[1:3]
api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)

records = [
    {
        "key": str(uuid.uuid4()),  # send the same key again on retry: it is stored once
        "model_a": model_a,
        "model_b": model_b,
        "prompt": f"Draft a subject line for email {i}.",
        "answer_a": "Quarterly results are in",
        "answer_b": "Read this now!!!",
        "outcome": "a" if i % 3 else "tie",
        "voter": f"user-{i}",
    }
    for i in range(10)
]
response = api.post("/api/battles/batch/", json={"records": records})
if response.status_code == 400:  # nothing stored; each bad field is named
    for problem in response.json()["problems"]:
        print(problem["field"], problem["problem"])
    sys.exit(1)
response.raise_for_status()
print("stored", response.json()["stored"], "battles")

board = api.get("/api/leaderboards/", params={"scope": "human"})
if board.status_code == 404:  # no board computed yet (refreshed in the background)
    print("no leaderboard yet")
else:
    board.raise_for_status()
    for row in board.json()["results"]["rows"]:
        print(row["rank"], row["model"], round(row["rating"]), row["votes"])
