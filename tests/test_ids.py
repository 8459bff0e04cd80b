"""Ids: sortable completion ids, and no repeats across a fork."""

from __future__ import annotations

import os

from chatkeep.ids import CompletionIdGenerator, is_completion_id


def test_completion_ids_sort_in_creation_order_and_are_well_formed() -> None:
    ids = CompletionIdGenerator()
    minted = [ids.new_id()[0] for _ in range(2000)]
    assert minted == sorted(minted) and len(set(minted)) == len(minted)
    assert all(is_completion_id(i) for i in minted)


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    ids = CompletionIdGenerator()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: mint and report, then leave at once
        os.close(read)
        os.write(write, (ids.request_id() + ids.new_id()[0][-20:]).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 200).decode()
    os.waitpid(pid, 0)
    parent = ids.request_id() + ids.new_id()[0][-20:]
    assert child[:36] != parent[:36]  # request ids differ
    assert child[36:] != parent[36:]  # the random part of completion ids differs
