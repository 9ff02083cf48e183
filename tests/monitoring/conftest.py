"""The monitoring pages review runs executed for real, as the workflows tests run them."""

from tests.workflows.conftest import executor, pipeline  # noqa: F401  (shared fixtures)
