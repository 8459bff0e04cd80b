"""`chatkeep keys create --admin`: a key for the usage and costs of every project, shown once,
listed as an admin key, and never counted as a project."""

from __future__ import annotations

import re

import pytest

from chatkeep.service.keys import hash_key
from tests.api.keyed import create_key, run_cli
from tests.cli.test_keys import raw_rows


def test_an_admin_key_is_made_shown_once_and_listed(database_url: str) -> None:
    created = run_cli("keys", "create", "--admin", "--name", "finance", "--database-url",
                      database_url)  # fmt: skip
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert re.fullmatch(r"sk-ck-admin-[0-9A-Za-z]{40}", secret)
    found = re.search(r"Created API key (key_\w+) for an admin key", created.stderr)
    assert found is not None, created.stderr
    rows = raw_rows(database_url, "SELECT project, admin, key_hash, prefix FROM api_keys")
    assert [(r[0], bool(r[1]), r[2], r[3]) for r in rows] == [
        ("*", True, hash_key(secret), secret[:16])
    ]
    create_key(database_url, "alpha")
    listed = run_cli("keys", "list", "--database-url", database_url).stdout
    assert re.search(rf"^{found.group(1)}\s+\(admin: all\)\s+finance\s+sk-ck-admin-", listed,
                     re.M), listed  # fmt: skip
    # Not a project: `projects list` shows alpha alone.
    projects = run_cli("projects", "list", "--database-url", database_url).stdout
    assert "alpha" in projects and "*" not in projects
    revoked = run_cli("keys", "revoke", found.group(1), "--database-url", database_url)
    assert revoked.stdout.startswith(f"API key {found.group(1)} of an admin key is revoked")


@pytest.mark.parametrize("flags", [["--admin", "--project", "alpha"], []], ids=["both", "neither"])
def test_create_needs_a_project_or_admin_and_not_both(database_url: str, flags: list[str]) -> None:
    result = run_cli("keys", "create", *flags, "--database-url", database_url)
    assert result.exit_code == 2
    assert "Give --project NAME for a project's key, or --admin" in result.stderr
