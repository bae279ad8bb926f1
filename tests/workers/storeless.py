"""For test modules of pure runners (no Django, no object store): the suite's autouse
fixtures start the object store; importing these into a module replaces them with no-ops.

    from tests.workers.storeless import empty_store_after_each_test, object_store  # noqa: F401
"""

import pytest


@pytest.fixture(scope="session")
def object_store():
    yield None


@pytest.fixture
def empty_store_after_each_test():
    yield
