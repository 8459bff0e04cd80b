"""Usage and costs: counting every completion the server answers (`meter`), prices from the
config file (`prices`), and OpenAI's usage and costs routes' queries and pages (`query`,
`report`). The counts live in the store's `usage_minutes` (`chatkeep.store.usage`).
"""
