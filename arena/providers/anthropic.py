"""Anthropic messages API: ``POST {base_url}/messages`` with ``x-api-key`` and
``anthropic-version``; the system prompt is the top-level ``system`` field."""

from arena.providers.call import END, Call, End
from arena.providers.endpoint import Endpoint
from arena.providers.errors import ProviderError, error_type
from arena.providers.sse import event_json, int_or_none

ANTHROPIC_VERSION = "2023-06-01"


ANTHROPIC_DEFAULT_MAX_TOKENS = 1024


class AnthropicProtocol:
    path = "/messages"
    end_optional = False
    _FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}

    @staticmethod
    def headers(key: str | None) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "anthropic-version": ANTHROPIC_VERSION}
        if key:
            headers["x-api-key"] = key
        return headers

    @staticmethod
    def body(endpoint: Endpoint, messages: list[dict]) -> dict:
        body = {
            "model": endpoint.model_id,
            "messages": list(messages),
            "max_tokens": endpoint.max_tokens or ANTHROPIC_DEFAULT_MAX_TOKENS,
            "stream": True,
        }
        if endpoint.system_prompt:
            body["system"] = endpoint.system_prompt
        for name in ("temperature", "top_p"):
            value = getattr(endpoint, name)
            if value is not None:
                body[name] = value
        return body

    @classmethod
    def parse(cls, event: str, data: str, call: Call) -> str | End:
        payload = event_json(data)
        kind = payload.get("type") or event
        if kind == "content_block_delta":
            delta = payload.get("delta")
            if not isinstance(delta, dict):
                raise ProviderError("sent a malformed event")
            if delta.get("type") != "text_delta":
                return ""  # thinking, tool input...: not part of the visible answer
            if not isinstance(delta.get("text"), str):
                raise ProviderError("sent a malformed event")
            return delta["text"]
        if kind == "message_start":
            message = payload.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
            if isinstance(usage, dict):
                call.tokens_in = int_or_none(usage.get("input_tokens"))
        elif kind == "message_delta":
            delta, usage = payload.get("delta"), payload.get("usage")
            if isinstance(delta, dict) and delta.get("stop_reason"):
                reason = str(delta["stop_reason"])[:40]
                call.finish_reason = cls._FINISH.get(reason, reason)
            if isinstance(usage, dict):
                call.tokens_out = int_or_none(usage.get("output_tokens"))
                if int_or_none(usage.get("input_tokens")) is not None:
                    call.tokens_in = usage["input_tokens"]
        elif kind == "message_stop":
            return END
        elif kind == "error":
            kind = error_type(payload.get("error"))
            retryable = kind in ("overloaded_error", "api_error")
            raise ProviderError(
                f"reported an error ({kind})", retryable=retryable, detail=data[:2000]
            )
        return ""
