"""The serving fixtures (tiny exported models), shared with tests/serving."""

from tests.serving.conftest import exported  # noqa: F401
from tests.serving.conftest import models  # noqa: F401
