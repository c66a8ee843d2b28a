"""Packaging: our packages, not namesakes from PyPI, and the data files they need."""

import importlib
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["switchboard", "sip", "conference", "broadcast", "recording", "dialplans", "probe"])
def test_package_is_ours(name: str) -> None:
    module = importlib.import_module(name)
    assert Path(module.__file__).resolve().parent == ROOT / name


def test_packaged_data_is_reachable() -> None:
    assert resources.files("switchboard.core").joinpath("data/shanxi-divisions.csv").is_file()
    assert resources.files("switchboard").joinpath("migrations/env.py").is_file()
    assert resources.files("switchboard.incidents").joinpath("templates/report.html").is_file()
    assert resources.files("dialplans").is_dir()


def test_divisions_cover_the_province_and_its_cities() -> None:
    from switchboard.core.divisions import all_divisions, full_name

    divisions = all_divisions()
    assert divisions["140000"].name == "山西省"
    assert sum(d.level == "city" for d in divisions.values()) == 11
    assert full_name("140105") == "山西省太原市小店区"
