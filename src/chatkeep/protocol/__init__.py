"""Wire models of the Chat Completions API: validation of requests, shapes of responses.

No I/O and no web-framework imports live here.
"""
