import os
from pathlib import Path

import pytest

# Keep the 2-core CI machine responsive and results reproducible.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def astronaut_path() -> Path:
    """A real photo that a package ships (scikit-image's public-domain astronaut)."""
    from avatar.resources import default_photo

    return default_photo()
