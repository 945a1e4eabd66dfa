"""OpenAI-compatible chat completions: ``POST {base_url}/chat/completions`` with
``stream: true`` and ``stream_options.include_usage``."""

from arena.providers.call import END, Call, End
from arena.providers.endpoint import Endpoint
from arena.providers.errors import ProviderError, error_type
from arena.providers.sse import event_json, int_or_none


class OpenAIProtocol:
    path = "/chat/completions"
    end_optional = True

    @staticmethod
    def headers(key: str | None) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    @staticmethod
    def body(endpoint: Endpoint, messages: list[dict]) -> dict:
        system = [{"role": "system", "content": endpoint.system_prompt}]
        body = {
            "model": endpoint.model_id,
            "messages": (system if endpoint.system_prompt else []) + list(messages),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        for name in ("temperature", "top_p", "max_tokens"):
            value = getattr(endpoint, name)
            if value is not None:
                body[name] = value
        return body

    @staticmethod
    def parse(event: str, data: str, call: Call) -> str | End:
        if data.strip() == "[DONE]":
            return END
        chunk = event_json(data)
        if chunk.get("error"):
            kind = error_type(chunk["error"])
            raise ProviderError(f"reported an error ({kind})", detail=data[:2000])
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            call.tokens_in = int_or_none(usage.get("prompt_tokens"))
            call.tokens_out = int_or_none(usage.get("completion_tokens"))
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise ProviderError("sent a malformed event")
        text = ""
        for choice in choices:
            if not isinstance(choice, dict) or not isinstance(choice.get("delta") or {}, dict):
                raise ProviderError("sent a malformed event")
            if choice.get("index", 0) != 0:
                continue
            content = (choice.get("delta") or {}).get("content")
            if isinstance(content, str):
                text += content
            elif content is not None:
                raise ProviderError("sent a malformed event")
            if choice.get("finish_reason"):
                call.finish_reason = str(choice["finish_reason"])[:40]
        return text
