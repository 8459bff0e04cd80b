"""The rule a project's name follows, wherever a name is given: an API key, `chatkeep
projects set`, an import, a `[projects.NAME]` table of the config file.

It imports nothing from chatkeep, so `service/`, `backends/` and `cli/` all check names
with the same rule without importing one another.
"""

from __future__ import annotations

import re

MAX_PROJECT_LENGTH = 64
PROJECT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class ProjectNameError(ValueError):
    """A project name that cannot be used; the message states the rule."""


def check_project(project: str) -> str:
    """`project`, if it follows the rule; else `ProjectNameError` saying what the rule is."""
    if len(project) > MAX_PROJECT_LENGTH or not PROJECT_PATTERN.fullmatch(project):
        raise ProjectNameError(
            f"Invalid project name {project!r}: use 1 to {MAX_PROJECT_LENGTH} letters, digits, "
            "'.', '_' or '-', starting with a letter or digit."
        )
    return project
