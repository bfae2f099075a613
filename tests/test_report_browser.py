"""The report in a real browser: headless Chromium (Debian's `chromium`) driven by Playwright.

Opens index.html from file:// exactly as a user would, and checks what only a browser can: no console
errors, every <audio> source exists and decodes, a click on a map point selects that song and shows its
recommendations, and the page renders at 1280x800 (the screenshot is kept in test-artifacts/ to look
at). Skips, saying why, where Playwright or a Chromium cannot be found; `.ci/run` installs both.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from report_fixtures import make_report_project

from vocalcli.report import write_report

ARTIFACTS = Path(os.environ.get("VOCAL_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _chromium() -> str:
    path = os.environ.get("VOCAL_CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)
    if not path:
        pytest.skip("no Chromium found (apt-get install chromium, or set VOCAL_CHROMIUM=/path/to/chrome)")
    return path


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
    exe = _chromium()
    with sync_api.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=exe, args=["--autoplay-policy=no-user-gesture-required",
                                                             "--no-sandbox"])
        except Exception as e:  # a browser that cannot start here (no display libs, sandbox): not our bug
            pytest.skip(f"{exe} does not start headless here: {str(e).splitlines()[0]}")
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    proj = make_report_project(root)
    res = write_report(proj, proj.load_config())
    return res.path


def _open(browser, index_html: Path):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console.{m.type}: {m.text}") if m.type in ("error", "warning")
            else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    # ERR_ABORTED = the page itself cancelled a load (media reloaded or paused); a missing file is another error
    page.on("requestfailed", lambda r: problems.append(f"failed to load {r.url}: {r.failure}")
            if "ERR_ABORTED" not in (r.failure or "") else None)
    page.goto(index_html.as_uri())
    page.wait_for_selector("#song .recs li")  # the featured song is selected and its chunk loaded
    return page, problems


AUDIO_CHECK = """async () => {
  const out = [];
  for (const a of document.querySelectorAll('audio')) {
    const src = a.currentSrc || a.src;
    a.preload = 'auto';
    const r = await new Promise((resolve) => {
      const done = (ok) => resolve({src, ok, error: a.error ? a.error.code + ' ' + a.error.message : null,
                                    duration: a.duration});
      if (a.readyState >= 2) return done(true);
      a.addEventListener('loadeddata', () => done(true), {once: true});
      a.addEventListener('error', () => done(false), {once: true});
      setTimeout(() => done(false), 10000);
      a.load();
    });
    out.push(r);
  }
  return out;
}"""


def test_page_loads_without_errors_and_every_audio_decodes(browser, site: Path):
    page, problems = _open(browser, site)
    try:
        assert "songs prepared" in page.text_content("#summary")
        assert page.locator("#map circle.pt").count() == 36
        results = page.evaluate(AUDIO_CHECK)
        # the selected song's two clips + two buttons (song, voice) per recommendation
        assert len(results) == 2 + 2 * 10
        bad = [r for r in results if not r["ok"] or r["error"]]
        assert not bad, bad
        assert all(2.5 < r["duration"] < 3.5 for r in results), [r["duration"] for r in results]
        assert not problems, problems
    finally:
        page.close()


def test_clicking_a_map_point_selects_it_and_shows_its_recommendations(browser, site: Path):
    page, problems = _open(browser, site)
    try:
        target = "dan-song3"
        page.click(f'#map circle[data-id="{target}"]')
        page.wait_for_function("document.querySelector('#song h2').textContent === 'Song 3 by dan'"
                               " && document.querySelectorAll('#song .recs li').length === 10")
        assert page.evaluate("location.hash") == f"#song={target}"
        recs = page.eval_on_selector_all("#song .recs li", "els => els.map(e => e.dataset.id)")
        assert len(recs) == 10 and not any(r.startswith("dan-") for r in recs)  # other singers only
        assert all(page.text_content(f'#song .recs li[data-id="{r}"] .why') for r in recs)
        assert page.locator("#selection .ring").count() == 11  # the song and its ten matches on the map
        # a click also starts the song's clip
        page.wait_for_function("!document.querySelector('#song audio').paused")
        # hover names the song and the singer
        page.hover('#map circle[data-id="ann-song1"]')
        assert page.text_content("#tip") == "Song 1 by ann — ann"
        # colour by gender: the legend lists the genders
        page.select_option("#color-by", "gender")
        legend = page.text_content("#legend")
        assert "female" in legend and "male" in legend
        page.select_option("#color-by", "singer")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.mouse.move(0, 0)
        page.screenshot(path=str(ARTIFACTS / "report-1280x800.png"))
        assert (ARTIFACTS / "report-1280x800.png").stat().st_size > 10_000
        assert not problems, problems
    finally:
        page.close()


def test_library_and_quality_sections_render(browser, site: Path):
    page, problems = _open(browser, site)
    try:
        lib = page.text_content("#library")
        assert "zed/s.wav" in lib and "too_short" in lib and "1.0 s < 4 s" in lib
        page.click("#library tr.singer >> text=bea")
        page.click("#library tr.songlist >> text=Song 2 by bea")
        page.wait_for_function("document.querySelector('#song h2').textContent === 'Song 2 by bea'")
        q = page.text_content("#quality")
        assert "singer_id.top1" in q and "MFCC mean+std" in q
        assert page.locator("#quality .chart").count() == 4  # step + epoch curves of both models
        page.screenshot(path=str(ARTIFACTS / "report-full.png"), full_page=True)
        assert not problems, problems
    finally:
        page.close()
