"""Export and browsing of stored completions: what to export (`options`), where from (a
local store, `source`; a running server, `remote`), in which format (`formats`), and the
walk that ties them together (`walk`). Used by `chatkeep export`, `chatkeep logs` and the
`GET /v1/chatkeep/exports/chat_completions` route; imports neither `http/` nor `cli/`.
"""
