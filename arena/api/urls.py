from django.urls import path

from arena.api.views import (
    api_docs,
    battle_batch,
    battle_submit,
    openapi_json,
    token_delete,
    token_list,
    token_new,
    tokens_page,
)

urlpatterns = [
    path("api/battles/", battle_submit, name="api_battle"),
    path("api/battles/batch/", battle_batch, name="api_battle_batch"),
    path("api/tokens/", token_list, name="api_tokens"),
    path("api/tokens/new/", token_new, name="api_token_new"),
    path("api/tokens/<int:token_id>/revoke/", token_delete, name="api_token_revoke"),
    path("api/openapi.json", openapi_json, name="openapi"),
    path("api/docs/", api_docs, name="api_docs"),
    path("account/tokens/", tokens_page, name="api_tokens_page"),
]
