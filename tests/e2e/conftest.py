"""A running local cloud for the end-to-end tests: template.yaml deployed once per test module.

One cloud at a time: moto's backends are process-wide, so a module that builds its own cloud (from a changed
template) must not share the process with a running one; module scope tears each down before the next.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gluerelay.local.cloud import CloudOptions, LocalCloud


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    options = CloudOptions(work_dir=tmp_path_factory.mktemp("local-cloud"))
    with LocalCloud(options) as running:
        yield running
