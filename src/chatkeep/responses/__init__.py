"""OpenAI's Responses API, stored (docs/responses.md): request validation (`request`), the
stored form of items and the conversation rebuilt from them (`items`), the Chat Completions
call that answers a response (`chat_call`), the Response object (`objects`), the stream's
typed events (`events`), the stored copy's redaction (`redaction`) and the service that
ties them to the model router and the `ResponseStore` (`service`)."""
