import os
import sys
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))      # tests/reference_*.py helpers


def _data_dir():
    env = os.environ.get("TEXTBOOK_LM_DATA")
    if env and Path(env).is_dir():
        return Path(env)
    shared = ROOT.parent / "shared" / "data"
    return shared if shared.is_dir() else None


@pytest.fixture(scope="session")
def data_dir():
    """The folder of real corpora; tests that need it skip when it is absent."""
    d = _data_dir()
    if d is None:
        pytest.skip("real corpora not available: set TEXTBOOK_LM_DATA to a folder holding them")
    os.environ["TEXTBOOK_LM_DATA"] = str(d)
    return d


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
