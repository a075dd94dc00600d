"""report.html in a real browser: headless Chromium renders it offline, the
screenshot is not blank and every image on the page loads."""

import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from kmlc.clustering import analyse
from tests.clustering.conftest import build_scenes_model

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on PATH (Debian: apt-get install chromium), so the "
    "report cannot be rendered in a browser",
)


def chromium(tmp_path, *args):
    """Runs headless Chromium offline; returns its standard output."""
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--virtual-time-budget=5000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    return result.stdout


def image_counts(tmp_path, page):
    """`(images, broken)` as the page's own script counted them after load."""
    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    body = re.search(r"<body[^>]*>", dom).group(0)
    images = re.search(r'data-images="(\d+)"', body)
    broken = re.search(r'data-broken-images="(\d+)"', body)
    assert images and broken, f"the page's check script did not run: {body}"
    return int(images.group(1)), int(broken.group(1))


@pytest.fixture(scope="module")
def report(scenes, tmp_path_factory):
    _, _, _, image_set = scenes
    model = build_scenes_model(image_set, "full")
    out = tmp_path_factory.mktemp("report")
    analyse(model, image_set.subset(range(40)), out, clusters=3, map_method="pca")
    return out / "report.html"


def test_the_report_renders_with_every_image_loaded(report, tmp_path):
    page = report.read_text()
    sources = re.findall(r'<img[^>]* src="([^"]*)"', page)
    assert sources and all(source.startswith("data:image/") for source in sources)
    assert not re.search(r'(?:src|href)="(?!data:|#)', page)  # nothing to fetch
    images, broken = image_counts(tmp_path, report)
    assert (images, broken) == (len(sources), 0)

    shot = tmp_path / "report.png"
    chromium(
        tmp_path, f"--screenshot={shot}", "--window-size=1200,2000", report.as_uri()
    )
    pixels = np.asarray(Image.open(shot).convert("RGB"), np.float32)
    assert pixels.shape[:2] == (2000, 1200)
    assert pixels.std() > 20  # not one flat colour
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500  # figures, photos
    dark = (pixels.mean(axis=2) < 100).mean()
    assert 0.005 < dark < 0.5  # text and figures on a light page


def test_the_check_finds_a_broken_image(report, tmp_path):
    """The control: the same page with one image pointing nowhere."""
    page = report.read_text()
    first = re.search(r'<img[^>]* src="(data:[^"]*)"', page).group(1)
    broken_page = tmp_path / "broken.html"
    broken_page.write_text(page.replace(first, "missing.png", 1))
    images, broken = image_counts(tmp_path, broken_page)
    assert broken == 1 and images == len(re.findall(r"<img ", page))
