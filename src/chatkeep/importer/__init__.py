"""`chatkeep import`: stored completions from another server that speaks the
stored-completions API (OpenAI, Azure, another chatkeep) into a project of this store.

`convert` turns what the source's routes show back into what a create would have stored;
`run` walks the source, page by page, resumably. docs/import.md says what is kept.
"""
