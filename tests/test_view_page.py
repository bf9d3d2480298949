"""``robomem view``: the page of a memory built from the simulator's camera, opened in a real headless
browser (Chromium): its DOM lists exactly the objects the memory file holds, with their holders, the
timeline shows the mug's move, and the screenshot shows a drawn map where the page puts it. The view
never changes the memory file."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pybullet")

from camera_walk import ROOM, camera_batches  # noqa: E402

from robomem.cli import main as robomem_main  # noqa: E402
from robomem.core import Memory, MemoryConfig  # noqa: E402
from robomem.view.page import HEADER_PX, PAGE_MARGIN_PX  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
WINDOW = (1200, 1100)


@pytest.fixture(scope="module")
def memory_file(tmp_path_factory) -> dict:
    folder: Path = tmp_path_factory.mktemp("view")
    db = folder / "home.sqlite"
    config = folder / "memory.yaml"
    config.write_text(f"memory:\n  rooms:\n    - {{name: {ROOM['name']}, min: {ROOM['min']}, max: {ROOM['max']}}}\n")
    with Memory(MemoryConfig(db_path=str(db), rooms=[ROOM])) as memory:
        for batch in camera_batches():
            memory.ingest(batch)
        infos = [memory.belief.info(t, None) for t in memory.believed_tracks()]
        mug = min(t.track_id for t in memory.tracks.values() if t.label == "Mug")
    return {"db": db, "config": config, "folder": folder, "labels": {i.label for i in infos},
            "holders": {i.track_id: (i.label, i.receptacle) for i in infos}, "mug": mug}


class _Dom(HTMLParser):
    """The labels of the objects table and the map, and the history's items, from a DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[int, list[str]] = {}  # by track id: the cells
        self.map_labels: list[str] = []
        self.history: list[str] = []
        self._row: int | None = None
        self._cells: list[str] = []
        self._in: str | None = None
        self._svg_size: tuple[int, int] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-id" in a:
            self._row, self._cells = int(a["data-id"]), []
        elif tag == "td" and self._row is not None:
            self._cells.append("")
            self._in = "td"
        elif tag == "rect" and a.get("data-label"):
            self.map_labels.append(a["data-label"])
        elif tag == "svg" and a.get("id") == "map":
            self._svg_size = (int(a["width"]), int(a["height"]))
        elif tag == "li":
            self.history.append("")
            self._in = "li"

    def handle_endtag(self, tag):
        if tag == "tr" and self._row is not None:
            self.rows[self._row] = self._cells
            self._row = None
        if tag in ("td", "li"):
            self._in = None

    def handle_data(self, data):
        if self._in == "td":
            self._cells[-1] += data
        elif self._in == "li":
            self.history[-1] += data


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--window-size={WINDOW[0]},{WINDOW[1]}", *args], capture_output=True, text=True,
                          timeout=90, check=True)


@pytest.fixture(scope="module")
def page(memory_file) -> dict:
    out = memory_file["folder"] / "page"
    before = _sha(memory_file["db"])
    code = robomem_main(["view", str(memory_file["db"]), "--out", str(out), "--object", "Mug",
                         "--config", str(memory_file["config"])])
    assert code == 0
    assert _sha(memory_file["db"]) == before  # read through a copy: the memory file is untouched
    return {"html": out / "index.html", "png": out / "map.png"}


@needs_chromium
def test_the_browser_shows_every_object_the_file_holds(memory_file, page):
    dom = _Dom()
    dom.feed(_chromium("--dump-dom", page["html"].as_uri()).stdout)
    assert set(dom.rows) == set(memory_file["holders"]) and len(memory_file["labels"]) >= 4
    assert {cells[0] for cells in dom.rows.values()} == memory_file["labels"]
    assert set(dom.map_labels) == memory_file["labels"]
    for track_id, (label, receptacle) in memory_file["holders"].items():  # holder: "on Box", "in ...", or ""
        holder = dom.rows[track_id][3]
        assert dom.rows[track_id][0] == label and (holder.split(" ", 1)[1] if holder else None) == receptacle
    mug = memory_file["mug"]
    assert dom.rows[mug][3] == "on Box" and dom.rows[mug][4] == ROOM["name"]  # moved onto the box, in the kitchen
    # the timeline: on the table first, then on the box from the second visit
    holders = [item for item in dom.history if item.startswith(f"#{mug} holder = ")]
    assert [h.split(" = ")[1].split(" from")[0] for h in holders] == ["on DiningTable", "on Box"]

@needs_chromium
def test_the_screenshot_shows_the_map_where_the_page_puts_it(page, tmp_path):
    import matplotlib.image as mpimg

    shot = tmp_path / "shot.png"
    _chromium(f"--screenshot={shot}", page["html"].as_uri())
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    dom = _Dom()
    dom.feed(page["html"].read_text())
    width, height = dom._svg_size
    top, left = PAGE_MARGIN_PX + HEADER_PX, PAGE_MARGIN_PX
    drawn = pixels[top: top + height, left: left + width]
    red, green, blue = drawn[..., 0], drawn[..., 1], drawn[..., 2]
    orange = (red > 0.85) & (green > 0.4) & (green < 0.7) & (blue < 0.35)  # objects (#f08c26)
    bluish = (blue > red + 0.1) & (blue > 0.6)  # furniture (#5b8cd6, translucent)
    dark = drawn.mean(axis=2) < 0.35  # labels, edges and room outlines
    assert orange.sum() > 50 and bluish.sum() > 500 and dark.sum() > 200
    beside = pixels[top: top + height, left + width + 30:]  # right of the map: nothing drawn
    assert beside.size == 0 or np.all(beside > 0.95)


def test_the_png_is_written_and_not_blank(page):
    import matplotlib.image as mpimg

    picture = mpimg.imread(page["png"])[..., :3]
    assert picture.shape[0] > 500 and picture.std() > 0.05


def test_bad_files_and_unknown_objects_are_refused(memory_file, tmp_path, capsys):
    assert robomem_main(["view", str(tmp_path / "none.sqlite"), "--out", str(tmp_path / "o")]) == 2
    assert "no memory file" in capsys.readouterr().err
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    assert robomem_main(["view", str(garbage), "--out", str(tmp_path / "o")]) == 2
    assert "not a" in capsys.readouterr().err
    assert robomem_main(["view", str(memory_file["db"]), "--out", str(tmp_path / "o"), "--object", "Unicorn"]) == 2
    err = capsys.readouterr().err
    assert "never knew a 'Unicorn'" in err and "Mug" in err
    assert not (tmp_path / "o" / "index.html").exists()
