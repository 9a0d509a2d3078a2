"""The page of `rag serve`, in a real browser: Debian's Chromium driven by Playwright for Python.

Why Playwright (not Selenium + chromium-driver): it launches the system browser through
`executable_path` with no driver binary whose version must match the browser, and it can
intercept every request the page makes (to fail on any host other than 127.0.0.1), read the
clipboard, wait on selectors without sleeps and take full-page screenshots in a few lines.
It never downloads a browser here: only /usr/bin/chromium is launched.

A real `rag serve` runs on a free loopback port over the real index and model (the session's
`real_env`); the answers the page shows are compared with `rag ask --json` for the same question.
Full-page screenshots of an English and a Chinese answer are saved under the test's tmp folder.
If Chromium cannot start, the tests fail and say so.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
EN = "What does the report say about the Code of Conduct in the South China Sea?"
ZH = "东盟的中心地位是什么？"
NOT_FOUND = "报告如何评价中美元首在旧金山的会晤？"
XSS = ["<img src=x onerror=alert(1)>", '"><script>alert(1)</script>', "</title><svg onload=alert(1)>",
       "**东盟** [点我](javascript:alert(1)) `code` <b>粗</b>"]
K = 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _flat(text: str) -> str:
    """Text with all whitespace removed: the page may show line breaks differently, never other characters."""
    return re.sub(r"\s+", "", text)


def _report(capsys, line: str) -> None:
    """Print a figure in the test run's output (not captured)."""
    with capsys.disabled():
        print("\n" + line)


# -- the server and the reference answers --------------------------------------------------------
@pytest.fixture(scope="module")
def env(real_assistant, real_env):
    """The environment of `rag serve` / `rag ask`: the session's model cache and built index."""
    return {**os.environ, **real_env, "PYTHONPATH": str(ROOT), "RAG_API_KEY": ""}


@pytest.fixture(scope="module")
def server(env):
    """A real `rag serve` on a free loopback port; its base URL."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag", "serve", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while True:
        if proc.poll() is not None:
            pytest.fail(f"rag serve exited with code {proc.returncode}: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("rag serve did not answer /healthz within 10 minutes")
        time.sleep(0.5)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _cli(env, question: str, k: int = K) -> dict:
    r = subprocess.run(
        [sys.executable, "-m", "rag", "ask", "--json", "-k", str(k), question],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def expected(env):
    """`rag ask --json` for the questions the page is checked on."""
    return {q: _cli(env, q) for q in (EN, ZH, NOT_FOUND)}


class InProcessServer:
    """uvicorn in a thread over an app of the same assistant: a server a test may stop."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline, "in-process server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


# -- the browser ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium cannot start: {CHROMIUM} is missing (apt-get install -y chromium; .ci/run does it)")
    with sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:  # noqa: BLE001 - any launch failure is reported as such
            pytest.fail(f"Chromium cannot start ({CHROMIUM}): {exc}")
        yield b
        b.close()


class Watch:
    """What a page did that it must not: requests to other hosts, dialogs, uncaught script errors."""

    def __init__(self) -> None:
        self.outside: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.requests: list[str] = []


@pytest.fixture
def watch():
    return Watch()


@pytest.fixture
def page(browser, watch):
    context = browser.new_context(viewport={"width": 1100, "height": 900})

    def guard(route):
        url = route.request.url
        watch.requests.append(url)
        if urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            watch.outside.append(url)
            route.abort()

    context.route("**/*", guard)
    p = context.new_page()
    p.on("dialog", lambda d: (watch.dialogs.append(d.message), d.dismiss()))
    p.on("pageerror", lambda e: watch.errors.append(str(e)))
    p.set_default_timeout(60_000)
    yield p
    context.close()
    assert not watch.outside, f"requests left 127.0.0.1: {watch.outside}"
    assert not watch.dialogs, f"a dialog opened: {watch.dialogs}"
    assert not watch.errors, f"script errors on the page: {watch.errors}"
    assert watch.requests, "the request guard saw no request at all"


def _open(page, base: str, question: str, k: int = K, extra: str = "") -> None:
    page.goto(f"{base}/?q={quote(question)}&k={k}{extra}")
    page.wait_for_selector("#results li.hit")


def _shown(page) -> list[dict]:
    """What the page shows for each passage."""
    return page.eval_on_selector_all(
        "#results li.hit",
        """items => items.map(li => ({
            id: li.id,
            rank: li.querySelector('.rank').textContent,
            cite: li.querySelector('.cite').textContent,
            text: li.querySelector('blockquote.text').textContent,
            lang: li.querySelector('blockquote.text').getAttribute('lang'),
            best: Array.from(li.querySelectorAll('mark.best')).map(m => m.textContent).join(''),
            terms: Array.from(li.querySelectorAll('.terms li')).map(t => t.textContent),
            termMarks: Array.from(li.querySelectorAll('blockquote mark.term')).map(m => [+m.dataset.start, +m.dataset.end]),
            crumbs: Array.from(li.querySelectorAll('.crumbs li')).map(c => c.textContent),
        }))""",
    )


def _same_as_cli(page, answer: dict) -> None:
    shown = _shown(page)
    assert len(shown) == len(answer["passages"]) == K
    for s, p in zip(shown, answer["passages"]):
        assert s["rank"] == str(p["rank"]) and s["id"] == f"hit-{p['rank']}"
        assert s["cite"] == f"{p['source']}:L{p['line_start']}-{p['line_end']}"
        assert _flat(s["text"]) == _flat(p["text"])
        assert p["highlight"] and _flat(s["best"]) == _flat(p["highlight"]["text"])
        assert s["lang"] == "zh"
        assert s["crumbs"] == (p["section"][1:] or p["section"])
        assert s["terms"] == [f"{m['query']} → {m['passage']}" for m in p["matched_terms"]]
        marked = {i for a, b in s["termMarks"] for i in range(a, b)}
        for m in p["matched_terms"]:  # every occurrence of every bridged word is marked in the passage
            for a, b in m["spans"]:
                assert set(range(a, b)) <= marked, (m, s["termMarks"])
        assert marked <= {i for m in p["matched_terms"] for a, b in m["spans"] for i in range(a, b)}


# -- the tests ---------------------------------------------------------------------------------------
def test_english_answer_equals_the_cli_with_bridged_words_marked(page, server, expected, tmp_path, capsys):
    page.goto(server + "/")
    page.wait_for_selector("#documents li")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type(EN)
    started = time.perf_counter()
    page.keyboard.press("Enter")
    page.wait_for_selector("#results li.hit")
    elapsed = time.perf_counter() - started
    _report(capsys, f"web: time to first result (Enter -> first passage shown, {EN!r}): {elapsed * 1000:.0f} ms")
    assert page.url == f"{server}/?q={quote(EN, safe='').replace('%20', '+')}&k={K}"
    answer = expected[EN]
    assert any(p["matched_terms"] for p in answer["passages"])
    _same_as_cli(page, answer)
    assert page.text_content("#asked") == EN and page.get_attribute("#asked", "lang") == "en"
    page.screenshot(path=str(tmp_path / "answer-en.png"), full_page=True)
    _report(capsys, f"web: screenshot {tmp_path / 'answer-en.png'}")
    readme_png = ROOT / "docs" / "screenshot.png"
    if os.environ.get("RAG_UPDATE_SCREENSHOT"):  # refresh the README's picture (small: one viewport, PNG)
        page.set_viewport_size({"width": 960, "height": 820})
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(readme_png))
    assert readme_png.is_file()


def test_chinese_answer_equals_the_cli(page, server, expected, tmp_path, capsys):
    _open(page, server, ZH)
    _same_as_cli(page, expected[ZH])
    assert page.get_attribute("#asked", "lang") == "zh"
    assert page.is_hidden("#notfound")
    page.screenshot(path=str(tmp_path / "answer-zh.png"), full_page=True)
    _report(capsys, f"web: screenshot {tmp_path / 'answer-zh.png'}")


def test_copy_citation_puts_citation_and_quoted_passage_on_the_clipboard(page, server, expected):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    _open(page, server, ZH)
    first = expected[ZH]["passages"][0]
    page.click("#hit-1 button.copy")
    # A function, not an expression: polling an expression evals it, which the page's CSP forbids.
    page.wait_for_function("() => document.querySelector('#hit-1 button.copy').textContent === 'Copied'")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == f"“{first['text'].strip()}”\n— {first['source']}:L{first['line_start']}-{first['line_end']}"
    assert "Copied the citation of passage 1" in page.text_content("#status")


def test_show_context_expands_the_neighbouring_lines_in_place(page, server, expected, real_assistant):
    _open(page, server, ZH)
    first = expected[ZH]["passages"][0]
    button = page.locator("#hit-1 button.context")
    assert button.get_attribute("aria-expanded") == "false"
    button.click()
    page.wait_for_selector("#hit-1 .ctx.before", state="attached")
    ctx = real_assistant.show(first["id"], context_lines=3)
    assert ctx.before.strip() and ctx.after.strip()
    before = page.text_content("#hit-1 .ctx.before")
    after = page.text_content("#hit-1 .ctx.after")
    assert _flat(before) == _flat(ctx.before) and _flat(after) == _flat(ctx.after)
    # In place: before the passage, after it, inside the same item.
    order = page.eval_on_selector("#hit-1 .body", "b => Array.from(b.children).map(c => c.className)")
    assert order == ["ctx before", "text", "ctx after"]
    assert button.get_attribute("aria-expanded") == "true"
    button.click()
    assert page.is_hidden("#hit-1 .ctx.before") and page.is_hidden("#hit-1 .ctx.after")


def test_report_map_marks_hit_sections_and_a_click_scrolls_to_the_passage(page, server, expected):
    page.set_viewport_size({"width": 1100, "height": 600})
    _open(page, server, EN)
    marks = page.locator("svg.map a.mark")
    assert marks.count() == K
    assert sorted(marks.all_text_contents()) == sorted(str(r) for r in range(1, K + 1))
    marked = set(page.eval_on_selector_all("svg.map g.sec.has-hit title", "ts => ts.map(t => t.textContent)"))
    for p in expected[EN]["passages"]:
        if len(p["section"]) > 1:  # below the report's title: the deepest section of every hit is marked
            assert p["section"][-1] in marked
    unmarked = page.locator("svg.map g.sec:not(.has-hit)").count()
    assert unmarked > 0  # not everything lights up
    assert page.evaluate("window.scrollY") == 0
    last = [i for i, t in enumerate(marks.all_text_contents()) if t == str(K)]
    assert len(last) == 1
    marks.nth(last[0]).click()
    page.wait_for_function(f"() => document.activeElement && document.activeElement.id === 'hit-{K}'")
    box = page.locator(f"#hit-{K}").bounding_box()
    assert page.evaluate("window.scrollY") > 0 and 0 <= box["y"] < 600


def test_not_found_shows_the_banner_with_the_reason_and_the_closest_passages(page, server, expected):
    answer = expected[NOT_FOUND]
    assert answer["not_found"] and answer["not_found_reason"]
    _open(page, server, NOT_FOUND)
    banner = page.locator("#notfound")
    assert banner.is_visible()
    assert answer["not_found_reason"] in banner.text_content()
    assert page.locator("#results li.hit").count() == len(answer["passages"]) > 0


@pytest.mark.parametrize("typed", XSS)
def test_markup_in_a_question_is_shown_as_typed_everywhere(page, server, typed):
    page.goto(f"{server}/?q={quote(typed)}&k=2")
    page.wait_for_selector("#results li.hit")
    assert page.input_value("#q") == typed
    assert page.text_content("#asked") == typed
    assert page.locator("#asked *").count() == 0  # no element made of it: not HTML, not Markdown
    assert typed in page.title()
    assert page.evaluate("new URLSearchParams(location.search).get('q')") == typed
    assert page.locator("script").count() == 1  # only app.js
    assert page.locator("#answer img, #answer svg:not(.map), #error img").count() == 0
    # Typed in the box and asked with Enter: same.
    page.fill("#q", typed + " 2")
    page.keyboard.press("Enter")
    page.wait_for_function("t => document.getElementById('asked').textContent === t", arg=typed + " 2")
    # In the error banner: an unknown mode is refused by the server, whose message quotes it.
    page.goto(f"{server}/?q=x&k=2&mode={quote(typed)}")
    page.wait_for_selector("#error:not([hidden])")
    message = page.text_content("#error")
    assert "HTTP 4" in message and typed in message
    assert page.locator("#error *").count() == 0


def test_server_refusals_and_a_stopped_server_give_readable_messages(page, server, real_assistant):
    # A 4xx from the real server: shown with its reason, not a blank page.
    page.goto(f"{server}/?q=x&k=2&mode=nonsense")
    page.wait_for_selector("#error:not([hidden])")
    assert re.search(r"HTTP 400\): unknown mode 'nonsense'", page.text_content("#error"))
    # A server that goes away between loading the page and asking.
    from rag.server import create_app

    other = InProcessServer(create_app(real_assistant, warm_up=False))
    page.goto(other.base + "/")
    page.wait_for_selector("#documents li")
    other.stop()
    page.fill("#q", ZH)
    page.keyboard.press("Enter")
    page.wait_for_selector("#error:not([hidden])")
    assert "cannot be reached" in page.text_content("#error")
    assert page.is_visible("#q") and page.is_visible("#documents")


def test_api_key_is_asked_for_and_sent_as_a_bearer_token(page, real_assistant):
    from rag.server import create_app

    srv = InProcessServer(create_app(real_assistant, warm_up=False, api_key="s3cret-key"))
    try:
        page.goto(f"{srv.base}/?q={quote(ZH)}&k=2")  # the page itself loads without the key
        page.wait_for_selector("#keybox:not([hidden])")
        page.wait_for_selector("#error:not([hidden])")  # set a microtask after the key box shows
        assert "HTTP 401" in page.text_content("#error")
        page.fill("#apikey", "s3cret-key")
        page.click("#savekey")
        page.wait_for_selector("#results li.hit")
        assert page.locator("#documents li").count() >= 1
    finally:
        srv.stop()


def test_back_button_returns_to_the_previous_question(page, server):
    _open(page, server, ZH, k=2)
    page.fill("#q", NOT_FOUND)
    page.keyboard.press("Enter")
    page.wait_for_function("t => document.getElementById('asked').textContent === t", arg=NOT_FOUND)
    page.go_back()
    page.wait_for_function("t => document.getElementById('asked').textContent === t", arg=ZH)
    assert page.input_value("#q") == ZH and page.locator("#results li.hit").count() == 2
    page.go_forward()
    page.wait_for_function("t => document.getElementById('asked').textContent === t", arg=NOT_FOUND)


def test_documents_are_listed_with_their_metadata(page, server):
    meta = json.loads((ROOT / "corpus" / "ciss-2022-asia-pacific-community-outlook.meta.json").read_text(encoding="utf-8"))
    page.goto(server + "/")
    page.wait_for_selector("#documents li")
    item = page.locator("#documents li").first
    assert item.locator("cite[lang=zh]").text_content() == meta["title_zh"]
    assert item.locator("cite[lang=en]").text_content() == meta["title_en"]
    assert meta["publisher"] in item.text_content() and meta["year"] in item.text_content()


def test_narrow_screen_and_keyboard_only(page, server):
    page.set_viewport_size({"width": 360, "height": 740})
    _open(page, server, EN)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert page.locator("label[for=q]").count() == page.locator("label[for=k]").count() == page.locator("label[for=mode]").count() == 1
    # Tab from the question box reaches the Ask button, then the advanced options.
    page.focus("#q")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "go"
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # opens "Advanced"
    assert page.evaluate("document.getElementById('advanced').open")
    # A passage's buttons are reachable and work with the keyboard.
    page.focus("#hit-1 button.context")
    page.keyboard.press("Enter")
    page.wait_for_selector("#hit-1 .ctx.before", state="attached")


def test_api_docs_work_offline(page, server, watch):
    page.goto(server + "/docs")
    page.wait_for_selector(".swagger-ui .opblock")
    assert page.locator(".swagger-ui .opblock").count() >= 5
    assert all(urlsplit(u).hostname == "127.0.0.1" for u in watch.requests)


# -- a library passage: link targets folded --------------------------------------------------------
@pytest.fixture(scope="module")
def linked(tmp_path_factory):
    """A server over a library-like Markdown report (links, citation markers, markup in a link)."""
    from rag.assistant import Assistant
    from rag.server import create_app

    from .conftest import HashEncoder, linked_corpus

    folder = tmp_path_factory.mktemp("linked")
    assistant = Assistant(corpus_dir=linked_corpus(folder), index_dir=folder / "i", encoder=HashEncoder(), on_notice=lambda m: None)
    server = InProcessServer(create_app(assistant, warm_up=False, api_key=""))
    yield server.base, assistant
    server.stop()


def test_a_library_passage_shows_its_links_folded_with_the_targets_still_at_hand(page, linked):
    from rag.cite import folded, shown_text

    base, assistant = linked
    question = "东盟经济增长的关键是什么？"
    answer = assistant.ask(question, k=2).to_dict()
    p = next(p for p in answer["passages"] if "新华社" in p["text"])
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    _open(page, base, question, k=2)
    hit = f"#hit-{p['rank']}"
    shown = page.text_content(f"{hit} blockquote.text")
    # Exactly what the library folds to (the CLI shows the same): link words, [source] names, no addresses.
    assert _flat(shown) == _flat(shown_text(p["text"], p["start"]))
    assert "<script>alert(1)</script>开放合作" in shown and "http" not in shown
    # Markup in a link's words or target stays text: no element came from the file.
    assert page.locator("script").count() == 1
    assert page.locator(f"{hit} blockquote script, {hit} blockquote img").count() == 0
    # The targets are still there: on the link's words (hover), behind the small ↗ and each [source].
    pieces = folded(p["text"], p["start"])
    labelled = next(x for x in pieces if x.shown == "新华社报道")
    words = page.locator(f"{hit} .linked", has_text="新华社报道")
    assert words.get_attribute("title") == labelled.url
    arrows = page.eval_on_selector_all(f"{hit} a.link", "as => as.map(a => [a.getAttribute('href'), a.getAttribute('rel'), a.getAttribute('aria-label')])")
    assert [a[0] for a in arrows] == [x.url for x in pieces if x.kind == "fold" and x.url and not x.shown]
    assert all(rel == "noopener noreferrer nofollow" and label.startswith("link: https://") for _, rel, label in arrows)
    assert labelled.url in [a[0] for a in arrows]
    evil = next(x.url for x in pieces if x.kind == "label" and "evil.example" in x.url)
    assert evil in [a[0] for a in arrows]  # a target holding markup is an address, set as an attribute
    sources = page.eval_on_selector_all(f"{hit} a.src", "as => as.map(a => [a.textContent, a.getAttribute('href')])")
    assert [s[0] for s in sources] == ["[sina]", "[163]", "[ft.com]"]
    assert sources[0][1].startswith("https://finance.sina.com.cn/") and sources[2][1] == "https://www.ft.com/content/0123456789abcdef"
    # The folded spans keep the file's offsets.
    spans = page.eval_on_selector_all(f"{hit} .fold", "fs => fs.map(f => [+f.dataset.start, +f.dataset.end])")
    assert all(s < e and [s, e] in p["hidden"] for s, e in spans)
    # Copy citation quotes the file's exact characters (addresses included), so it can be checked.
    page.click(f"{hit} button.copy")
    page.wait_for_function(f"() => document.querySelector('{hit} button.copy').textContent === 'Copied'")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == f"“{p['text'].strip()}”\n— {p['source']}:L{p['line_start']}-{p['line_end']}"
    assert "](https://www.news.cn/" in copied


def test_show_context_folds_links_in_the_neighbouring_lines_as_in_the_passage(page, tmp_path):
    """The lines **Show context** adds are folded as the passage is (`rag.cite.shown_context`, what
    `rag show` prints): link words and [source] links, no addresses, markup as text."""
    from rag.assistant import Assistant
    from rag.cite import shown_context
    from rag.server import create_app

    from .conftest import LINKED_REPORT, HashEncoder

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    # The climate paragraph right under its heading: its 3 lines of context reach the linked paragraph.
    (corpus / "asean-links.md").write_text(LINKED_REPORT.replace("## 二、气候合作\n\n", "## 二、气候合作\n"), encoding="utf-8")
    assistant = Assistant(corpus_dir=corpus, index_dir=tmp_path / "i", encoder=HashEncoder(), on_notice=lambda m: None)
    server = InProcessServer(create_app(assistant, warm_up=False, api_key=""))
    try:
        question = "气候变化是东盟各国面临的共同挑战"
        p = next(p for p in assistant.ask(question, k=2).to_dict()["passages"] if "气候变化" in p["text"])
        _open(page, server.base, question, k=2)
        hit = f"#hit-{p['rank']}"
        page.click(f"{hit} button.context")
        page.wait_for_selector(f"{hit} .ctx.before", state="attached")
        ctx = assistant.show(p["id"], context_lines=3)
        assert "](https://www.news.cn/" in ctx.before  # the file's lines hold the addresses
        before, _, after = shown_context(ctx)
        shown = page.text_content(f"{hit} .ctx.before")
        assert _flat(shown) == _flat(before) and _flat(page.text_content(f"{hit} .ctx.after")) == _flat(after)
        assert "新华社报道" in shown and "<script>alert(1)</script>开放合作" in shown and "http" not in shown
        sources = page.eval_on_selector_all(f"{hit} .ctx.before a.src", "as => as.map(a => a.textContent)")
        assert sources == ["[sina]", "[163]", "[ft.com]"]
        assert page.locator("script").count() == 1 and page.locator(f"{hit} .ctx script, {hit} .ctx img").count() == 0
    finally:
        server.stop()
